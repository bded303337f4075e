-- The id of the current state's …StateEntered event: AWS cites it in the causes of errors
-- raised inside the state ("entered at the event id #N").
ALTER TABLE executions ADD COLUMN entered_event_id INTEGER;
-- What a waiting Wait state's Assign set (a JSON object): it takes effect, and shows on the
-- WaitStateExited event, when the timer fires.
ALTER TABLE executions ADD COLUMN timer_assigned TEXT;
