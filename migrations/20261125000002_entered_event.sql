-- The id of the current state's …StateEntered event: AWS cites it in the causes of errors
-- raised inside the state ("entered at the event id #N").
ALTER TABLE executions ADD COLUMN entered_event_id INTEGER;
