//! The admin dashboard: orders by status, decisions per day (approved and rejected), time
//! from order to decision (median and 90th percentile) and the orders near their deadline —
//! drawn as SVG charts, each with its figures in a table for screen readers.

use crate::app::calls;
use crate::app::{live_changes, short_time, Loading, Refused};
use crate::model::{Dashboard, DayStats, OrderStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

const CHART_W: i64 = 560;
const CHART_H: i64 = 160;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let live = live_changes();
    let figures = Resource::new(move || live.get(), |_| calls::load_dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match figures.await {
                    Ok(d) => view! { <Charts d/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Charts(d: Dashboard) -> impl IntoView {
    let Dashboard {
        by_status,
        days,
        due_soon,
    } = d;
    let decided: i64 = days.iter().map(|d| d.approved + d.rejected).sum();
    let approved: i64 = days.iter().map(|d| d.approved).sum();
    let rate = (decided > 0).then(|| format!("{}%", approved * 100 / decided));
    let due = if due_soon.is_empty() {
        view! { <p class="empty">"Nothing is due within four hours."</p> }.into_any()
    } else {
        let rows = due_soon
            .into_iter()
            .map(|o| {
                view! {
                    <li>
                        <A href=format!("/admin/orders/{}", o.id)>{o.id.clone()}</A>
                        {format!(
                            " — {} — due {}",
                            o.total,
                            o.due_at.as_deref().map(short_time).unwrap_or_default(),
                        )}
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="due">{rows}</ul> }.into_any()
    };
    view! {
        <div class="charts">
            <section aria-labelledby="by-status">
                <h2 id="by-status">"Orders by status"</h2>
                <StatusChart by_status/>
            </section>
            <section aria-labelledby="rate">
                <h2 id="rate">
                    "Decisions per day"
                    {rate.map(|r| view! { <span class="muted">{format!(" — {r} approved")}</span> })}
                </h2>
                <DecisionChart days=days.clone()/>
            </section>
            <section aria-labelledby="speed">
                <h2 id="speed">"Time from order to decision"</h2>
                <SpeedChart days/>
            </section>
            <section aria-labelledby="due">
                <h2 id="due">"Due within four hours"</h2>
                {due}
            </section>
        </div>
    }
}

#[component]
fn StatusChart(by_status: Vec<(OrderStatus, i64)>) -> impl IntoView {
    let max = by_status.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row_h = 26;
    let height = row_h * by_status.len() as i64;
    let bars = by_status
        .iter()
        .enumerate()
        .map(|(i, (status, n))| {
            let y = i as i64 * row_h;
            let w = (CHART_W - 190) * n / max;
            view! {
                <text x="0" y=y + 17 class="axis">{status.label()}</text>
                <rect x="140" y=y + 4 width=w height=row_h - 8 class=format!("bar {}", status.as_str())></rect>
                <text x=146 + w y=y + 17 class="value">{*n}</text>
            }
        })
        .collect_view();
    let rows = by_status
        .into_iter()
        .map(|(s, n)| view! { <tr><th scope="row">{s.label()}</th><td class="num">{n}</td></tr> })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {CHART_W} {height}") role="img" aria-label="Orders by status, as bars">
            {bars}
        </svg>
        <table class="sr-only">
            <tbody>{rows}</tbody>
        </table>
    }
}

/// The day as "11-25".
fn short_day(day: &str) -> String {
    day.get(5..).unwrap_or(day).to_string()
}

#[component]
fn DecisionChart(days: Vec<DayStats>) -> impl IntoView {
    let max = days
        .iter()
        .map(|d| d.approved + d.rejected)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = CHART_W / days.len().max(1) as i64;
    let plot = CHART_H - 20;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as i64 * slot + 4;
            let ok = plot * d.approved / max;
            let no = plot * d.rejected / max;
            view! {
                <rect x=x y=plot - ok width=slot - 8 height=ok class="bar approved">
                    <title>{format!("{}: {} approved", d.day, d.approved)}</title>
                </rect>
                <rect x=x y=plot - ok - no width=slot - 8 height=no class="bar rejected">
                    <title>{format!("{}: {} rejected", d.day, d.rejected)}</title>
                </rect>
                <text x=x + (slot - 8) / 2 y=CHART_H - 4 class="axis" text-anchor="middle">
                    {short_day(&d.day)}
                </text>
            }
        })
        .collect_view();
    let rows = days
        .into_iter()
        .map(|d| {
            view! {
                <tr>
                    <th scope="row">{d.day}</th>
                    <td class="num">{d.approved}</td>
                    <td class="num">{d.rejected}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {CHART_W} {CHART_H}") role="img" aria-label="Approved and rejected orders per day, as stacked bars">
            {bars}
        </svg>
        <p class="legend-line">
            <span class="swatch approved"></span>
            " approved "
            <span class="swatch rejected"></span>
            " rejected"
        </p>
        <table class="sr-only">
            <thead>
                <tr>
                    <th scope="col">"Day"</th>
                    <th scope="col">"Approved"</th>
                    <th scope="col">"Rejected"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// Minutes as "45 min", "3.5 h" or "2.0 days".
fn duration(minutes: i64) -> String {
    match minutes {
        ..=119 => format!("{minutes} min"),
        120..=2879 => format!("{:.1} h", minutes as f64 / 60.0),
        _ => format!("{:.1} days", minutes as f64 / 1440.0),
    }
}

#[component]
fn SpeedChart(days: Vec<DayStats>) -> impl IntoView {
    let max = days
        .iter()
        .filter_map(|d| d.p90_minutes)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = CHART_W / days.len().max(1) as i64;
    let plot = CHART_H - 20;
    let points = |pick: fn(&DayStats) -> Option<i64>| {
        days.iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let m = pick(d)?;
                Some(format!(
                    "{},{}",
                    i as i64 * slot + slot / 2,
                    plot - plot * m / max
                ))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let median = points(|d| d.median_minutes);
    let p90 = points(|d| d.p90_minutes);
    let labels = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            view! {
                <text x=i as i64 * slot + slot / 2 y=CHART_H - 4 class="axis" text-anchor="middle">
                    {short_day(&d.day)}
                </text>
            }
        })
        .collect_view();
    let rows = days
        .iter()
        .map(|d| {
            let show = |m: Option<i64>| m.map(duration).unwrap_or_else(|| "—".into());
            view! {
                <tr>
                    <th scope="row">{d.day.clone()}</th>
                    <td class="num">{show(d.median_minutes)}</td>
                    <td class="num">{show(d.p90_minutes)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {CHART_W} {CHART_H}") role="img" aria-label="Median and 90th percentile time from order to decision per day, as lines">
            <text x="4" y="12" class="axis">{duration(max)}</text>
            <polyline points=p90 class="line p90"></polyline>
            <polyline points=median class="line median"></polyline>
            {labels}
        </svg>
        <p class="legend-line">
            <span class="swatch median"></span>
            " median "
            <span class="swatch p90"></span>
            " 90th percentile"
        </p>
        <table class="sr-only">
            <thead>
                <tr>
                    <th scope="col">"Day"</th>
                    <th scope="col">"Median"</th>
                    <th scope="col">"90th percentile"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
