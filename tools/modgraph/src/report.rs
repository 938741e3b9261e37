//! The checker's result: a crate's file graph and its cycles (strongly connected components of more than one
//! file), printable for a human and as Graphviz `dot`.

use std::fmt::{self, Display, Write as _};
use std::path::{Path, PathBuf};

/// An import of one file by another, with one example of a path that creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index into [`Report::files`] of the importing file.
    pub from: usize,
    /// Index into [`Report::files`] of the file defining what is imported.
    pub to: usize,
    /// The line in `from` of the example path.
    pub line: usize,
    /// The example path, as written (`crate::config::Settings`, `super::*`).
    pub path: String,
}

/// Files that import each other, directly or around a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Indices into [`Report::files`], in file order.
    pub files: Vec<usize>,
    /// Indices into [`Report::edges`] of every edge between two files of the cycle.
    pub edges: Vec<usize>,
}

/// One crate's file graph and its cycles.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every file of the crate's module tree; the crate root first.
    pub files: Vec<PathBuf>,
    /// One edge per importing/imported pair of distinct files, ordered by `(from, to)`.
    pub edges: Vec<Edge>,
    pub cycles: Vec<Cycle>,
}

impl Report {
    pub(crate) fn new(files: Vec<PathBuf>, edges: Vec<Edge>) -> Self {
        let mut cycles: Vec<Cycle> = strongly_connected(files.len(), &edges)
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|mut files| {
                files.sort_unstable();
                let edges = (edges.iter().enumerate())
                    .filter(|(_, e)| files.contains(&e.from) && files.contains(&e.to))
                    .map(|(i, _)| i)
                    .collect();
                Cycle { files, edges }
            })
            .collect();
        cycles.sort_by_key(|c| c.files[0]);
        Self { files, edges, cycles }
    }

    /// Shows file paths relative to `base` (a workspace root, say) where they lie under it.
    #[must_use]
    pub fn relative_to(mut self, base: &Path) -> Self {
        for file in &mut self.files {
            if let Ok(relative) = file.strip_prefix(base) {
                *file = relative.to_path_buf();
            }
        }
        self
    }

    /// The file graph in Graphviz `dot`; edges inside a cycle are red.
    #[must_use]
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph modgraph {\n  node [shape=box];\n");
        for (i, edge) in self.edges.iter().enumerate() {
            let in_cycle = self.cycles.iter().any(|c| c.edges.contains(&i));
            let color = if in_cycle { ", color=red" } else { "" };
            let (from, to) = (self.files[edge.from].display(), self.files[edge.to].display());
            let _ = writeln!(
                out,
                "  \"{from}\" -> \"{to}\" [tooltip=\"{}:{}\"{color}];",
                edge.path, edge.line
            );
        }
        out.push_str("}\n");
        out
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.files[0].display();
        if self.cycles.is_empty() {
            return writeln!(
                f,
                "{root}: no import cycles ({} files, {} edges)",
                self.files.len(),
                self.edges.len()
            );
        }
        writeln!(f, "{root}: {} import cycle(s)", self.cycles.len())?;
        for (n, cycle) in self.cycles.iter().enumerate() {
            writeln!(f, "cycle {} ({} files):", n + 1, cycle.files.len())?;
            for &file in &cycle.files {
                writeln!(f, "    {}", self.files[file].display())?;
            }
            writeln!(f, "  edges:")?;
            for edge in cycle.edges.iter().map(|&i| &self.edges[i]) {
                let (from, to) = (self.files[edge.from].display(), self.files[edge.to].display());
                writeln!(f, "    {from} -> {to}   ({from}:{} `{}`)", edge.line, edge.path)?;
            }
        }
        Ok(())
    }
}

/// Tarjan's algorithm: the strongly connected components of the graph on nodes `0..n`.
fn strongly_connected(n: usize, edges: &[Edge]) -> Vec<Vec<usize>> {
    struct State {
        adjacent: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn connect(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for w in s.adjacent[v].clone() {
            match s.index[w] {
                None => {
                    connect(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index) if s.on_stack[w] => s.low[v] = s.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut adjacent = vec![Vec::new(); n];
    for edge in edges {
        adjacent[edge.from].push(edge.to);
    }
    let mut s = State {
        adjacent,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            connect(&mut s, v);
        }
    }
    s.components
}
