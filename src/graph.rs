//! A state machine drawn as a graph: its top-level states laid out in layers from `StartAt`
//! (each state one layer below the first state that leads to it), with the path an execution
//! took, where it is now and where it failed. Pure: the server lays it out, the page draws it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

pub const NODE_WIDTH: i32 = 190;
pub const NODE_HEIGHT: i32 = 40;
const GAP_X: i32 = 30;
const GAP_Y: i32 = 56;
const MARGIN: i32 = 20;
/// Room on the right for edges that go back up.
const BACK_LANE: i32 = 60;

/// What an execution did in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visit {
    NotVisited,
    Visited,
    /// The execution is in this state now.
    Current,
    /// The execution failed here.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// `Task`, `Choice`, …
    pub kind: String,
    pub x: i32,
    pub y: i32,
    pub visit: Visit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// An SVG path from the bottom of `from` to the top of `to`.
    pub path: String,
    /// `Catch` or `Default` edges are labelled, at (`label_x`, `label_y`).
    pub label: Option<String>,
    pub label_x: i32,
    pub label_y: i32,
    /// The execution went this way.
    pub taken: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: i32,
    pub height: i32,
}

/// A state's transitions: `(target, label)`.
fn transitions(state: &Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut push = |target: &Value, label: Option<&str>| {
        if let Some(t) = target.as_str() {
            out.push((t.to_string(), label.map(str::to_string)));
        }
    };
    push(&state["Next"], None);
    for choice in state["Choices"].as_array().into_iter().flatten() {
        push(&choice["Next"], None);
    }
    push(&state["Default"], Some("Default"));
    for catcher in state["Catch"].as_array().into_iter().flatten() {
        let errors = catcher["ErrorEquals"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        push(&catcher["Next"], Some(&format!("Catch {errors}")));
    }
    out
}

/// Lays out `definition` (ASL JSON). `entered` lists the top-level states the execution
/// entered, in order; `current` is where it is now; `failed` where it failed.
pub fn layout(
    definition: &Value,
    entered: &[String],
    current: Option<&str>,
    failed: Option<&str>,
) -> Graph {
    let Some(states) = definition["States"].as_object() else {
        return Graph::default();
    };
    let names: Vec<&String> = states.keys().collect();
    // Layers: breadth-first from StartAt; unreachable states go below everything.
    let mut layer: HashMap<&str, i32> = HashMap::new();
    let mut queue = VecDeque::new();
    if let Some(start) = definition["StartAt"]
        .as_str()
        .filter(|s| states.contains_key(*s))
    {
        layer.insert(start, 0);
        queue.push_back(start);
    }
    while let Some(name) = queue.pop_front() {
        let depth = layer[name];
        for (target, _) in transitions(&states[name]) {
            if let Some((key, _)) = states.get_key_value(&target) {
                if !layer.contains_key(key.as_str()) {
                    layer.insert(key.as_str(), depth + 1);
                    queue.push_back(key.as_str());
                }
            }
        }
    }
    let deepest = layer.values().copied().max().unwrap_or(-1);
    for name in &names {
        layer.entry(name.as_str()).or_insert(deepest + 1);
    }
    let layers = layer.values().copied().max().unwrap_or(0) + 1;
    let mut rows: Vec<Vec<&str>> = vec![Vec::new(); layers as usize];
    for name in &names {
        rows[layer[name.as_str()] as usize].push(name.as_str());
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1) as i32;
    let content = widest * NODE_WIDTH + (widest - 1) * GAP_X;
    let mut position: HashMap<&str, (i32, i32)> = HashMap::new();
    for (depth, row) in rows.iter().enumerate() {
        let n = row.len() as i32;
        let row_width = n * NODE_WIDTH + (n - 1).max(0) * GAP_X;
        let left = MARGIN + (content - row_width) / 2;
        for (i, name) in row.iter().enumerate() {
            let x = left + i as i32 * (NODE_WIDTH + GAP_X);
            let y = MARGIN + depth as i32 * (NODE_HEIGHT + GAP_Y);
            position.insert(name, (x, y));
        }
    }

    let visited: std::collections::HashSet<&str> = entered.iter().map(String::as_str).collect();
    let taken: std::collections::HashSet<(&str, &str)> = entered
        .windows(2)
        .map(|w| (w[0].as_str(), w[1].as_str()))
        .collect();
    let nodes = names
        .iter()
        .map(|name| {
            let (x, y) = position[name.as_str()];
            let visit = if failed == Some(name.as_str()) {
                Visit::Failed
            } else if current == Some(name.as_str()) {
                Visit::Current
            } else if visited.contains(name.as_str()) {
                Visit::Visited
            } else {
                Visit::NotVisited
            };
            Node {
                name: name.to_string(),
                kind: states[name.as_str()]["Type"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
                x,
                y,
                visit,
            }
        })
        .collect();
    let right = MARGIN + content;
    let mut edges = Vec::new();
    for (back, name) in names.iter().enumerate() {
        let (x1, y1) = position[name.as_str()];
        for (target, label) in transitions(&states[name.as_str()]) {
            let Some(&(x2, y2)) = position.get(target.as_str()) else {
                continue;
            };
            let (path, label_x, label_y) = if y2 > y1 {
                let (sx, sy) = (x1 + NODE_WIDTH / 2, y1 + NODE_HEIGHT);
                let (tx, ty) = (x2 + NODE_WIDTH / 2, y2);
                let bend = (ty - sy) / 2;
                let path = format!(
                    "M{sx},{sy} C{sx},{} {tx},{} {tx},{ty}",
                    sy + bend,
                    ty - bend
                );
                (path, (sx + tx) / 2, (sy + ty) / 2)
            } else {
                // Up or sideways: around the right-hand side.
                let lane = right + 12 + (back as i32 % 4) * 10;
                let (sx, sy) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2);
                let (tx, ty) = (x2 + NODE_WIDTH, y2 + NODE_HEIGHT / 2);
                let path = format!("M{sx},{sy} C{lane},{sy} {lane},{ty} {tx},{ty}");
                (path, lane, (sy + ty) / 2)
            };
            let taken = taken.contains(&(name.as_str(), target.as_str()));
            edges.push(Edge {
                from: name.to_string(),
                to: target,
                path,
                label,
                label_x,
                label_y,
                taken,
            });
        }
    }
    Graph {
        nodes,
        edges,
        width: right + MARGIN + BACK_LANE,
        height: MARGIN * 2 + layers * NODE_HEIGHT + (layers - 1) * GAP_Y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine() -> Value {
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Next": "B", "Catch": [{"ErrorEquals": ["E"], "Next": "F"}]},
            "B": {"Type": "Choice", "Choices": [{"Next": "C"}], "Default": "A"},
            "C": {"Type": "Succeed"},
            "F": {"Type": "Fail"},
            "Lost": {"Type": "Pass", "End": true}
        }})
    }

    #[test]
    fn states_are_layered_from_start_at_and_unreachable_ones_go_last() {
        let g = layout(&machine(), &[], None, None);
        let y = |n: &str| g.nodes.iter().find(|x| x.name == n).map(|x| x.y);
        assert!(y("A") < y("B"));
        assert_eq!(y("B"), y("F"), "B and F are both one step from A");
        assert!(y("C") > y("B"));
        assert!(y("Lost") > y("C"));
        assert!(g.nodes.iter().all(|n| n.x + NODE_WIDTH <= g.width));
        assert!(g.nodes.iter().all(|n| n.y + NODE_HEIGHT <= g.height));
        let labels: Vec<_> = g.edges.iter().filter_map(|e| e.label.clone()).collect();
        assert_eq!(labels, ["Catch E", "Default"]);
    }

    #[test]
    fn the_path_taken_and_the_failure_are_marked() {
        let entered = ["A", "B", "A", "F"].map(String::from);
        let g = layout(&machine(), &entered, None, Some("F"));
        let visit = |n: &str| g.nodes.iter().find(|x| x.name == n).map(|x| x.visit);
        assert_eq!(visit("A"), Some(Visit::Visited));
        assert_eq!(visit("F"), Some(Visit::Failed));
        assert_eq!(visit("C"), Some(Visit::NotVisited));
        let taken: Vec<_> = g
            .edges
            .iter()
            .filter(|e| e.taken)
            .map(|e| format!("{}>{}", e.from, e.to))
            .collect();
        assert_eq!(taken, ["A>B", "A>F", "B>A"]);
        let back = g
            .edges
            .iter()
            .find(|e| e.from == "B" && e.to == "A")
            .unwrap();
        assert!(
            back.path.starts_with(&format!("M{},", 20 + NODE_WIDTH)),
            "{}",
            back.path
        );
    }

    #[test]
    fn a_definition_without_states_draws_nothing() {
        assert_eq!(layout(&json!({}), &[], None, None), Graph::default());
    }
}
