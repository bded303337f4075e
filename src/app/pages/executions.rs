//! The console's executions: every state machine's executions, one execution with its graph,
//! its states' inputs and outputs and its events, and Stop for a running one.

use crate::app::calls::{self, ExecutionList, StopExecution};
use crate::app::{encode, live_changes, short_time, Alert, Loading, Refused};
use crate::graph::{Graph, Visit, NODE_HEIGHT, NODE_WIDTH};
use crate::model::{EventLine, ExecutionDetail, StateData};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// The console page of execution `id`.
pub fn execution_href(id: &str) -> String {
    format!("/admin/executions/{}", encode(id))
}

#[component]
pub fn ExecutionListPage() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        ["machine", "status", "cursor"].map(|p| q.get(p).unwrap_or_default())
    };
    let live = live_changes();
    let list = Resource::new(
        move || (params(), live.get()),
        |([machine, status, cursor], _)| calls::executions(machine, status, cursor),
    );
    view! {
        <Title text="Executions"/>
        <h1>"Executions"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                let [_, status, cursor] = params();
                match list.await {
                    Ok(list) => view! { <ExecutionTable list status cursor/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ExecutionTable(list: ExecutionList, status: String, cursor: String) -> impl IntoView {
    let ExecutionList {
        machines,
        machine,
        rows,
        next,
    } = list;
    let machine_options = machines
        .into_iter()
        .map(|m| {
            let selected = m == machine;
            view! {
                <option value=m.clone() selected=selected>
                    {m.clone()}
                </option>
            }
        })
        .collect_view();
    let status_options = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
        .map(|s| {
            view! {
                <option value=s selected=status == s>
                    {s}
                </option>
            }
        })
        .collect_view();
    let base = format!(
        "/admin/executions?machine={}&status={}",
        encode(&machine),
        encode(&status)
    );
    let next =
        next.map(|n| view! { <A href=format!("{base}&cursor={}", encode(&n))>"Next page"</A> });
    let first = (!cursor.is_empty()).then(|| view! { <A href=base.clone()>"First page"</A> });
    let empty = rows.is_empty();
    let rows = rows
        .into_iter()
        .map(|e| {
            let badge = format!("badge {}", e.status.to_lowercase());
            view! {
                <tr>
                    <td class="id">
                        <A href=execution_href(&e.id)>{e.name}</A>
                    </td>
                    <td data-label="Status">
                        <span class=badge>{e.status}</span>
                    </td>
                    <td data-label="Started">{short_time(&e.started_at)}</td>
                    <td data-label="Ended">
                        {e.stopped_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <form method="get" action="/admin/executions" class="filter">
            <label>
                "State machine" <select name="machine">{machine_options}</select>
            </label>
            <label>
                "Status" <select name="status">
                    <option value="" selected=status.is_empty()>
                        "All"
                    </option>
                    {status_options}
                </select>
            </label>
            <button type="submit">"Show"</button>
        </form>
        {if empty {
            view! { <p class="empty">"No executions."</p> }.into_any()
        } else {
            view! {
                <table class="list">
                    <thead>
                        <tr>
                            <th scope="col">"Execution"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Started"</th>
                            <th scope="col">"Ended"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            }
                .into_any()
        }}
        <nav class="pages">{first} {next}</nav>
    }
}

#[component]
pub fn ExecutionPage() -> impl IntoView {
    let params = use_params_map();
    let stop = ServerAction::<StopExecution>::new();
    let live = live_changes();
    let detail = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                stop.version().get(),
                live.get(),
            )
        },
        |(id, ..)| calls::execution(id),
    );
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(detail) => {
                        let title = format!("Execution {}", detail.name);
                        let heading = title.clone();
                        let machine = detail.state_machine.clone();
                        let all = format!("/admin/executions?machine={}", encode(&machine));
                        view! {
                            <Title text=title/>
                            <h1>{heading}</h1>
                            <p>
                                <A href=all>"All executions of " {machine}</A>
                            </p>
                            <ExecutionView detail stop/>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// An execution: its facts, Stop while it runs, its graph with the selected state's input and
/// output (`?state=` in the URL), and its events.
#[component]
pub fn ExecutionView(detail: ExecutionDetail, stop: ServerAction<StopExecution>) -> impl IntoView {
    let query = use_query_map();
    let selected = move || query.read().get("state");
    let ExecutionDetail {
        id,
        name,
        state_machine,
        status,
        started_at,
        stopped_at,
        error,
        cause,
        input,
        output,
        events,
        states,
        graph,
    } = detail;
    let running = status == "RUNNING";
    let arn = id.clone();
    let badge = format!("badge {}", status.to_lowercase());
    let outcome = move || match stop.value().get() {
        Some(Ok(message)) => {
            Some(view! { <p class="notice" role="status">{message}</p> }.into_any())
        }
        Some(Err(e)) => Some(view! { <Alert message=e.message/> }.into_any()),
        None => None,
    };
    let stop_form = running.then(|| {
        view! {
            <details class="confirm stop">
                <summary>"Stop execution…"</summary>
                <ActionForm action=stop>
                    <input type="hidden" name="id" value=id.clone()/>
                    <p>"The execution ends at once as ABORTED; an order it runs is rejected."</p>
                    <label>
                        "Reason" <textarea name="cause" rows="2" maxlength="1000" required></textarea>
                    </label>
                    <button type="submit" class="danger">
                        {format!("Stop {name}")}
                    </button>
                </ActionForm>
            </details>
        }
    });
    let state_links = states
        .clone()
        .into_iter()
        .map(|s| {
            let visit = graph
                .nodes
                .iter()
                .find(|n| n.name == s.name)
                .map_or(Visit::Visited, |n| n.visit);
            let href = format!("?state={}", encode(&s.name));
            view! {
                <li class=visit_class(visit)>
                    <A href=href>{s.name}</A>
                </li>
            }
        })
        .collect_view();
    let state_panel = move || {
        let name = selected()?;
        let data = states.iter().find(|s| s.name == name).cloned();
        Some(view! { <StatePanel name data/> })
    };
    view! {
        {outcome}
        <dl class="facts">
            <dt>"State machine"</dt>
            <dd>{state_machine}</dd>
            <dt>"Execution ARN"</dt>
            <dd>
                <code>{arn}</code>
            </dd>
            <dt>"Status"</dt>
            <dd>
                <span class=badge>{status}</span>
            </dd>
            <dt>"Started"</dt>
            <dd>{short_time(&started_at)}</dd>
            <dt>"Ended"</dt>
            <dd>{stopped_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
            {error.map(|e| view! { <dt>"Error"</dt><dd><code>{e}</code></dd> })}
            {cause.map(|c| view! { <dt>"Cause"</dt><dd class="reason">{c}</dd> })}
        </dl>
        {stop_form}
        <h2>"Path"</h2>
        <GraphView graph/>
        <ul class="legend" aria-label="States (choose one to see its input and output)">
            {state_links}
        </ul>
        {state_panel}
        <details class="io">
            <summary>"Execution input and output"</summary>
            <h3>"Input"</h3>
            <pre>{input}</pre>
            <h3>"Output"</h3>
            <pre>{output.unwrap_or_else(|| "—".into())}</pre>
        </details>
        <h2>"Events"</h2>
        <EventTable events/>
    }
}

fn visit_class(visit: Visit) -> &'static str {
    match visit {
        Visit::NotVisited => "not-visited",
        Visit::Visited => "visited",
        Visit::Current => "current",
        Visit::Failed => "failed",
    }
}

/// The state machine drawn: visited states and the edges taken stand out, the current state
/// and a failure are marked. Clicking a state selects it.
#[component]
fn GraphView(graph: Graph) -> impl IntoView {
    let navigate = use_navigate();
    let Graph {
        nodes,
        edges,
        width,
        height,
    } = graph;
    let edges = edges
        .into_iter()
        .map(|e| {
            let label = e.label.clone().map(|l| {
                view! {
                    <text
                        x=e.label_x
                        y=e.label_y
                        class="edge-label"
                        text-anchor="middle"
                        aria-hidden="true"
                    >
                        {l}
                    </text>
                }
            });
            let class = if e.taken { "edge taken" } else { "edge" };
            view! {
                <path d=e.path class=class marker-end="url(#arrow)"></path>
                {label}
            }
        })
        .collect_view();
    let nodes = nodes
        .into_iter()
        .map(|n| {
            let navigate = navigate.clone();
            let href = format!("?state={}", encode(&n.name));
            let class = format!("node {}", visit_class(n.visit));
            view! {
                // An SVG link, so Tab reaches it and Enter opens it; the router only follows
                // HTML links, so the click navigates here without reloading the page.
                <g class=class>
                    <a
                        href=href.clone()
                        on:click=move |ev| {
                            ev.prevent_default();
                            navigate(&href, Default::default());
                        }
                    >
                        <title>{format!("{} ({})", n.name, n.kind)}</title>
                        <rect x=n.x y=n.y width=NODE_WIDTH height=NODE_HEIGHT rx="6"></rect>
                        <text
                            x=n.x + NODE_WIDTH / 2
                            y=n.y + NODE_HEIGHT / 2
                            text-anchor="middle"
                            dominant-baseline="central"
                        >
                            {n.name}
                        </text>
                    </a>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="graph">
            <svg
                viewBox=format!("0 0 {width} {height}")
                width=width
                height=height
                role="group"
                aria-label="The state machine, with the path this execution took"
            >
                <defs>
                    <marker
                        id="arrow"
                        viewBox="0 0 10 10"
                        refX="10"
                        refY="5"
                        markerUnits="userSpaceOnUse"
                        markerWidth="9"
                        markerHeight="9"
                        orient="auto-start-reverse"
                    >
                        <path d="M0,0 L10,5 L0,10 z"></path>
                    </marker>
                </defs>
                {edges}
                {nodes}
            </svg>
        </figure>
    }
}

#[component]
fn StatePanel(name: String, data: Option<StateData>) -> impl IntoView {
    let body = match data {
        Some(d) => view! {
            <h3>"Input"</h3>
            <pre>{d.input.unwrap_or_else(|| "—".into())}</pre>
            <h3>"Output"</h3>
            <pre>{d.output.unwrap_or_else(|| "— (not left yet)".into())}</pre>
        }
        .into_any(),
        None => view! { <p class="muted">"The execution did not enter this state."</p> }.into_any(),
    };
    view! {
        <section class="state-io" aria-label=format!("State {name}")>
            <h2>{format!("State \u{201c}{name}\u{201d}")}</h2>
            {body}
        </section>
    }
}

/// "12 ms", "3.4 s", "5 min 2 s".
fn elapsed(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[component]
fn EventTable(events: Vec<EventLine>) -> impl IntoView {
    let rows = events
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td class="num">{e.id}</td>
                    <td>{e.kind}</td>
                    <td>{e.state.unwrap_or_default()}</td>
                    <td>{short_time(&e.timestamp)}</td>
                    <td class="num">{elapsed(e.elapsed_ms)}</td>
                    <td>
                        <details>
                            <summary>"Details"</summary>
                            <code class="details">{e.details}</code>
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="events">
            <thead>
                <tr>
                    <th scope="col" class="num">"ID"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Time"</th>
                    <th scope="col" class="num">"Elapsed"</th>
                    <th scope="col">"Details"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
