//! The file graph's edges: every crate-internal path a file names (in `use` items, code, and `crate::`/`super::`/
//! `self::` paths inside macro arguments), resolved to the file that defines the named item.
//!
//! A module-level `use` that imports a module (`use crate::config;`, `use super::*;`) adds no edge of its own when
//! code in the same module names something through it: those paths resolve further, to the defining files.

use std::collections::HashSet;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::parse::Parser as _;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Token, UseTree};

use crate::report::Edge;
use crate::resolve::Target;
use crate::tree::{self, FileId, Import, ModId, Tree, is_test_only};

/// All edges between distinct files, one example each, ordered by `(from, to)`.
pub(crate) fn collect(tree: &Tree) -> Vec<Edge> {
    let mut walker = Walker {
        tree,
        file: 0,
        scope: 0,
        blocks: 0,
        edges: Vec::new(),
        used: HashSet::new(),
    };
    for (file, source) in tree.files.iter().enumerate() {
        walker.file = file;
        walker.scope = source.module;
        walker.visit_file(&source.ast);
    }
    let mut edges = import_edges(tree, &mut walker.used);
    edges.append(&mut walker.edges);
    edges.retain(|e| e.from != e.to);
    edges.sort_by_key(|e| (e.from, e.to, e.line));
    edges.dedup_by_key(|e| (e.from, e.to));
    edges
}

/// The edges of module-level `use` items; `used` holds the imports code went through (more are added here).
fn import_edges(tree: &Tree, used: &mut HashSet<(ModId, usize)>) -> Vec<Edge> {
    let mut resolved = Vec::new();
    for (scope, module) in tree.modules.iter().enumerate() {
        for (i, import) in module.imports.iter().enumerate() {
            if let Some(r) = tree.resolve(scope, &import.path) {
                used.extend(r.via.map(|via| (scope, via)));
                resolved.push((scope, i, import, r.target));
            }
        }
    }
    let edge = |(scope, i, import, target): (ModId, usize, &Import, Target)| {
        let to = match target {
            Target::File(file) => file,
            Target::Module(_) if used.contains(&(scope, i)) => return None,
            Target::Module(m) => tree.modules[m].file,
        };
        let glob = if import.alias.is_none() { "::*" } else { "" };
        let path = format!("{}{glob}", import.path.join("::"));
        Some(Edge {
            from: tree.modules[scope].file,
            to,
            line: import.line,
            path,
        })
    };
    resolved.into_iter().filter_map(edge).collect()
}

/// Visits one file's code in the module it belongs to, recording edges and which imports code went through.
struct Walker<'t> {
    tree: &'t Tree,
    file: FileId,
    scope: ModId,
    /// How many blocks deep the visit is: `use` items inside blocks are not module imports.
    blocks: usize,
    edges: Vec<Edge>,
    /// `(module, index into its imports)` that some path in that module's code resolved through.
    used: HashSet<(ModId, usize)>,
}

impl Walker<'_> {
    fn add(&mut self, path: &[String], line: usize, from_use: bool) {
        let Some(resolved) = self.tree.resolve(self.scope, path) else {
            return;
        };
        if let Some(i) = resolved.via {
            self.used.insert((self.scope, i));
        }
        let to = match resolved.target {
            Target::File(file) => file,
            // A lone name that is a module is no dependency of code (`use` aside); it is a value or type elsewhere.
            Target::Module(m) if from_use || path.len() > 1 => self.tree.modules[m].file,
            Target::Module(_) => return,
        };
        self.edges.push(Edge {
            from: self.file,
            to,
            line,
            path: path.join("::"),
        });
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(tree::item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if self.blocks > 0 {
            // A module inside a function body is not in the tree; its paths resolve as the function's would.
            return visit::visit_item_mod(self, m);
        }
        let child = self.tree.modules[self.scope].children.get(&tree::name(&m.ident));
        if let (Some((_, items)), Some(&child)) = (&m.content, child) {
            let outer = std::mem::replace(&mut self.scope, child);
            items.iter().for_each(|item| self.visit_item(item));
            self.scope = outer;
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if self.blocks > 0 && u.leading_colon.is_none() {
            tree::flatten_use(&u.tree, &mut Vec::new(), &mut |import| {
                self.add(&import.path, import.line, true);
            });
        }
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.blocks += 1;
        visit::visit_block(self, block);
        self.blocks -= 1;
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if !is_test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !is_test_only(&local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        if !is_test_only(&field.attrs) {
            visit::visit_field(self, field);
        }
    }

    fn visit_variant(&mut self, variant: &'ast syn::Variant) {
        if !is_test_only(&variant.attrs) {
            visit::visit_variant(self, variant);
        }
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        if !is_test_only(&arm.attrs) {
            visit::visit_arm(self, arm);
        }
    }

    /// `pub(crate)` and `pub(in crate::a)` name modules, but depend on nothing.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<_> = path.segments.iter().map(|s| tree::name(&s.ident)).collect();
            let line = path.segments.first().map_or(0, |s| s.ident.span().start().line);
            self.add(&segments, line, false);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        let mut paths = Vec::new();
        macro_paths(mac.tokens.clone(), &mut paths);
        for (path, line) in paths {
            self.add(&path, line, false);
        }
    }
}

/// The `crate::a::b`, `$crate::a::b`, `super::a` and `self::a` paths in a macro's tokens, with their lines.
fn macro_paths(tokens: TokenStream, out: &mut Vec<(Vec<String>, usize)>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(group) => macro_paths(group.stream(), out),
            TokenTree::Ident(ident) if ident == "crate" || ident == "super" || ident == "self" => {
                let mut path = vec![ident.to_string()];
                while let [TokenTree::Punct(a), TokenTree::Punct(b), TokenTree::Ident(next), ..] = &tokens[i + 1..]
                    && a.as_char() == ':'
                    && b.as_char() == ':'
                {
                    path.push(tree::name(next));
                    i += 3;
                }
                // `crate::a::{B, c::D}` (a `use` in a macro body): each leaf of the group.
                if let [TokenTree::Punct(a), TokenTree::Punct(b), TokenTree::Group(group), ..] = &tokens[i + 1..]
                    && a.as_char() == ':'
                    && b.as_char() == ':'
                    && group.delimiter() == Delimiter::Brace
                    && let Ok(trees) = Punctuated::<UseTree, Token![,]>::parse_terminated.parse2(group.stream())
                {
                    for tree in &trees {
                        tree::flatten_use(tree, &mut path.clone(), &mut |leaf| out.push((leaf.path, leaf.line)));
                    }
                    i += 3;
                } else if path.len() > 1 {
                    out.push((path, ident.span().start().line));
                }
            }
            _ => {}
        }
        i += 1;
    }
}
