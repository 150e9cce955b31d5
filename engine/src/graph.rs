//! Restore as a graph of objects (CRIU's open loop, `criu/files.c`, done as its own small engine).
//!
//! Every object a restore brings back (an open file description, a socket, a lock; later a mount, a
//! namespace, a device object) is a [`Node`] with a key. A node's [`Node::step`] does what it can and
//! answers [`Step::Done`], or [`Step::Pending`] with what it still waits for: other nodes by key
//! ([`Wait::Node`]: a socket waits for its listener), or something outside the graph ([`Wait::Other`]:
//! a plugin's reason). [`Graph::run`] drives every node, round after round, until all are done; a node
//! waiting only for nodes that are not done yet is not asked again until they are. A round in which no
//! node gets done fails with [`GraphError::Stuck`], naming each waiting node and what it waits for.
//!
//! The graph knows nothing of files: the key type `K` and the context `C` every step gets (what the
//! nodes build together: fds by file id...) are the caller's.

use crate::Result;
use std::collections::BTreeMap;
use std::fmt;

/// What one node waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait<K> {
    /// Another node of the graph, by key.
    Node(K),
    /// Something outside the graph, said in words (a plugin's reason for asking to be called again).
    Other(String),
}

/// The answer of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<K> {
    Done,
    Pending(Vec<Wait<K>>),
}

impl<K> Step<K> {
    /// Pending on one other node.
    pub fn on(key: K) -> Step<K> {
        Step::Pending(vec![Wait::Node(key)])
    }
}

/// A restorable object.
pub trait Node<K, C> {
    /// Its name in messages ("pid 10: fd 3: unix socket 1234").
    fn name(&self) -> String;
    /// Does what it can now; called again after a `Pending` (each step must be safe to repeat, or keep
    /// its own progress).
    fn step(&mut self, ctx: &mut C) -> Result<Step<K>>;
}

/// A node that never got done, and what it waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub node: String,
    pub waits_for: Vec<String>,
}

/// The graph's own errors (a node's step fails with the engine's error, passed through as it is).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{}", stuck_message(.0))]
    Stuck(Vec<Waiting>),
    #[error("two objects of the restore are both {0}")]
    Duplicate(String),
}

fn stuck_message(w: &[Waiting]) -> String {
    let each: Vec<String> = w.iter().map(|w| format!("{} waits for {}", w.node, w.waits_for.join(", "))).collect();
    format!("no progress restoring the objects of the checkpoint: {}", each.join("; "))
}

struct Slot<'n, K, C> {
    node: Box<dyn Node<K, C> + 'n>,
    done: bool,
    /// What its last step said it waits for.
    waits: Vec<Wait<K>>,
}

/// Nodes by key, in the order they were added (each round steps them in that order).
pub struct Graph<'n, K, C> {
    slots: Vec<Slot<'n, K, C>>,
    index: BTreeMap<K, usize>,
}

impl<'n, K: Ord + Clone + fmt::Display, C> Default for Graph<'n, K, C> {
    fn default() -> Self {
        Graph { slots: Vec::new(), index: BTreeMap::new() }
    }
}

impl<'n, K: Ord + Clone + fmt::Display, C> Graph<'n, K, C> {
    /// Adds `node` as `key`; a key given twice is an error.
    pub fn add(&mut self, key: K, node: Box<dyn Node<K, C> + 'n>) -> Result<()> {
        if self.index.contains_key(&key) {
            return Err(GraphError::Duplicate(key.to_string()).into());
        }
        self.index.insert(key, self.slots.len());
        self.slots.push(Slot { node, done: false, waits: Vec::new() });
        Ok(())
    }

    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether node `key` is done (a key not in the graph never is).
    pub fn is_done(&self, key: &K) -> bool {
        self.index.get(key).is_some_and(|&i| self.slots[i].done)
    }

    /// Steps every node until all are done; the first error of a step ends it.
    pub fn run(&mut self, ctx: &mut C) -> Result<()> {
        loop {
            let mut progressed = false;
            for i in 0..self.slots.len() {
                if self.slots[i].done || self.blocked(i) {
                    continue;
                }
                match self.slots[i].node.step(ctx)? {
                    Step::Done => {
                        self.slots[i].done = true;
                        self.slots[i].waits.clear();
                        progressed = true;
                    }
                    Step::Pending(w) => self.slots[i].waits = w,
                }
            }
            if self.slots.iter().all(|s| s.done) {
                return Ok(());
            }
            if !progressed {
                return Err(GraphError::Stuck(self.waiting()).into());
            }
        }
    }

    /// Whether slot `i` waits only for nodes, one of them not done: asking it again would change nothing.
    fn blocked(&self, i: usize) -> bool {
        let w = &self.slots[i].waits;
        !w.is_empty() && w.iter().all(|w| matches!(w, Wait::Node(_))) && w.iter().any(|w| matches!(w, Wait::Node(k) if !self.is_done(k)))
    }

    fn waiting(&self) -> Vec<Waiting> {
        let name = |w: &Wait<K>| match w {
            Wait::Node(k) => match self.index.get(k) {
                Some(&j) => self.slots[j].node.name(),
                None => format!("{k}, which is not in the checkpoint"),
            },
            Wait::Other(s) => s.clone(),
        };
        self.slots
            .iter()
            .filter(|s| !s.done)
            .map(|s| Waiting {
                node: s.node.name(),
                waits_for: if s.waits.is_empty() { vec!["(nothing it names)".into()] } else { s.waits.iter().map(name).collect() },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// A test node: done once every node of `needs` is in `ctx` (the keys done so far, in order), or
    /// never when `never` is set.
    struct T {
        key: u32,
        needs: Vec<u32>,
        never: Option<&'static str>,
        steps: std::rc::Rc<std::cell::Cell<u32>>,
    }

    impl Node<u32, Vec<u32>> for T {
        fn name(&self) -> String {
            format!("node {}", self.key)
        }
        fn step(&mut self, done: &mut Vec<u32>) -> Result<Step<u32>> {
            self.steps.set(self.steps.get() + 1);
            if let Some(why) = self.never {
                return Ok(Step::Pending(vec![Wait::Other(why.into())]));
            }
            let missing: Vec<Wait<u32>> = self.needs.iter().filter(|k| !done.contains(k)).map(|&k| Wait::Node(k)).collect();
            if !missing.is_empty() {
                return Ok(Step::Pending(missing));
            }
            done.push(self.key);
            Ok(Step::Done)
        }
    }

    fn node(key: u32, needs: &[u32]) -> (Box<T>, std::rc::Rc<std::cell::Cell<u32>>) {
        let steps = std::rc::Rc::new(std::cell::Cell::new(0));
        (Box::new(T { key, needs: needs.to_vec(), never: None, steps: steps.clone() }), steps)
    }

    fn stuck(e: Error) -> Vec<Waiting> {
        match e {
            Error::Graph(GraphError::Stuck(w)) => w,
            other => panic!("not a stuck graph: {other}"),
        }
    }

    #[test]
    fn a_node_waits_for_another_then_completes() {
        let mut g: Graph<u32, Vec<u32>> = Graph::default();
        // Added first, so its first step comes before the node it waits for.
        let (a, a_steps) = node(1, &[2]);
        let (b, _) = node(2, &[]);
        g.add(1, a).unwrap();
        g.add(2, b).unwrap();
        let mut done = Vec::new();
        g.run(&mut done).unwrap();
        assert_eq!(done, vec![2, 1]);
        assert_eq!(a_steps.get(), 2, "asked once before and once after the node it waits for");
        assert!(g.is_done(&1) && g.is_done(&2));
    }

    #[test]
    fn a_waiting_node_is_not_asked_again_until_its_node_is_done() {
        let mut g: Graph<u32, Vec<u32>> = Graph::default();
        // 1 waits for 3, 3 for 2, 2 for nothing: 2 is done in round 1, 3 in round 2, 1 in round 2 or 3.
        let (a, a_steps) = node(1, &[3]);
        g.add(1, a).unwrap();
        g.add(3, node(3, &[2]).0).unwrap();
        g.add(2, node(2, &[]).0).unwrap();
        let mut done = Vec::new();
        g.run(&mut done).unwrap();
        assert_eq!(done, vec![2, 3, 1]);
        assert_eq!(a_steps.get(), 2, "node 1 was asked while node 3 was not done");
    }

    #[test]
    fn a_cycle_fails_naming_both_nodes_and_what_each_waits_for() {
        let mut g: Graph<u32, Vec<u32>> = Graph::default();
        g.add(1, node(1, &[2]).0).unwrap();
        g.add(2, node(2, &[1]).0).unwrap();
        g.add(3, node(3, &[]).0).unwrap();
        let e = g.run(&mut Vec::new()).unwrap_err();
        let text = e.to_string();
        let w = stuck(e);
        assert_eq!(
            w,
            vec![
                Waiting { node: "node 1".into(), waits_for: vec!["node 2".into()] },
                Waiting { node: "node 2".into(), waits_for: vec!["node 1".into()] },
            ]
        );
        assert!(text.contains("node 1 waits for node 2; node 2 waits for node 1"), "{text}");
    }

    #[test]
    fn a_node_that_never_progresses_fails_with_its_reason() {
        let mut g: Graph<u32, Vec<u32>> = Graph::default();
        let steps = std::rc::Rc::new(std::cell::Cell::new(0));
        g.add(1, Box::new(T { key: 1, needs: Vec::new(), never: Some("the device to come up"), steps: steps.clone() })).unwrap();
        g.add(2, node(2, &[]).0).unwrap();
        let e = g.run(&mut Vec::new()).unwrap_err();
        assert_eq!(stuck(e), vec![Waiting { node: "node 1".into(), waits_for: vec!["the device to come up".into()] }]);
        // Round 1 got node 2 done; round 2 made no progress.
        assert_eq!(steps.get(), 2);
    }

    #[test]
    fn waiting_for_a_missing_node_says_so_and_keys_are_unique() {
        let mut g: Graph<u32, Vec<u32>> = Graph::default();
        g.add(1, node(1, &[9]).0).unwrap();
        let dup = g.add(1, node(1, &[]).0).unwrap_err();
        assert!(matches!(dup, Error::Graph(GraphError::Duplicate(_))), "{dup}");
        let w = stuck(g.run(&mut Vec::new()).unwrap_err());
        assert_eq!(w[0].waits_for, vec!["9, which is not in the checkpoint".to_string()]);
    }

    #[test]
    fn an_error_of_a_step_ends_the_run() {
        struct Fails;
        impl Node<u32, ()> for Fails {
            fn name(&self) -> String {
                "fails".into()
            }
            fn step(&mut self, _: &mut ()) -> Result<Step<u32>> {
                Err(Error::Kernel("pid 1: fd 2: broken".into()))
            }
        }
        let mut g: Graph<u32, ()> = Graph::default();
        g.add(1, Box::new(Fails)).unwrap();
        assert_eq!(g.run(&mut ()).unwrap_err().to_string(), "pid 1: fd 2: broken");
    }
}
