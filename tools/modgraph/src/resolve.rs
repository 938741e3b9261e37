//! Name resolution over a [`Tree`]: which module or file a crate-internal path leads to, following `use`
//! re-exports (explicit and glob) to the file that defines the item.

use crate::tree::{FileId, ModId, Tree};

/// Where a path leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A module (its file is [`crate::tree::Module::file`]).
    Module(ModId),
    /// An item, by the file that defines it; or, for a name that could not be found inside a module (macro
    /// generated, say), that module's file.
    File(FileId),
}

/// A resolved path, and which of the scope module's imports its first segment went through, if any.
pub(crate) struct Resolved {
    pub(crate) target: Target,
    pub(crate) via: Option<usize>,
}

/// The `(module, name)` lookups in progress, so that imports going around a loop end instead of recursing.
type InProgress<'p> = Vec<(ModId, &'p str)>;

impl Tree {
    /// Resolves `path` as written in module `scope`; `None` when it does not start inside the crate (an external
    /// crate, a local variable, a generic parameter, a prelude name).
    pub(crate) fn resolve(&self, scope: ModId, path: &[String]) -> Option<Resolved> {
        self.resolve_in(scope, path, &mut Vec::new())
    }

    fn resolve_in<'p>(&'p self, scope: ModId, path: &'p [String], busy: &mut InProgress<'p>) -> Option<Resolved> {
        let (first, rest) = path.split_first()?;
        let (mut module, via) = match first.as_str() {
            "crate" => (0, None),
            "self" => (scope, None),
            "super" => (self.modules[scope].parent?, None),
            name => match self.lookup(scope, name, busy)? {
                (Target::Module(m), via) => (m, via),
                (target, via) => return Some(Resolved { target, via }),
            },
        };
        for segment in rest {
            let next = match segment.as_str() {
                "super" => self.modules[module].parent.map(Target::Module),
                name => self.lookup(module, name, busy).map(|(target, _)| target),
            };
            match next {
                Some(Target::Module(m)) => module = m,
                Some(target) => return Some(Resolved { target, via }),
                None => {
                    return Some(Resolved {
                        target: Target::File(self.modules[module].file),
                        via,
                    });
                }
            }
        }
        Some(Resolved {
            target: Target::Module(module),
            via,
        })
    }

    /// Looks `name` up in `module`: child modules, then items, then `use` imports, then glob imports. Returns the
    /// index of the import it went through, if any.
    fn lookup<'p>(
        &'p self,
        module: ModId,
        name: &'p str,
        busy: &mut InProgress<'p>,
    ) -> Option<(Target, Option<usize>)> {
        let m = &self.modules[module];
        if let Some(&child) = m.children.get(name) {
            return Some((Target::Module(child), None));
        }
        if let Some(&file) = m.items.get(name) {
            return Some((Target::File(file), None));
        }
        if busy.contains(&(module, name)) {
            return None;
        }
        busy.push((module, name));
        // Explicit imports shadow globs.
        let explicit = m
            .imports
            .iter()
            .enumerate()
            .filter(|(_, import)| import.alias.is_some());
        let globs = m
            .imports
            .iter()
            .enumerate()
            .filter(|(_, import)| import.alias.is_none());
        let found = explicit.chain(globs).find_map(|(i, import)| {
            let target = match import.alias.as_deref() {
                Some(alias) if alias == name => self.resolve_in(module, &import.path, busy)?.target,
                Some(_) => return None,
                None => match self.resolve_in(module, &import.path, busy)?.target {
                    Target::Module(glob) if glob != module => self.lookup(glob, name, busy)?.0,
                    _ => return None,
                },
            };
            Some((target, Some(i)))
        });
        busy.pop();
        found
    }
}
