//! The crate's module tree as rustc loads it: which file each module lives in, and what each module defines
//! and imports. Everything under `#[cfg(test)]` is left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::{fs, io};

use syn::ext::IdentExt as _;
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, Item, Meta, Token, UseTree};

/// Index into [`Tree::modules`]; the crate root is module 0.
pub(crate) type ModId = usize;
/// Index into [`Tree::files`]; the crate root file is file 0.
pub(crate) type FileId = usize;

/// Why a crate's module tree could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A module file could not be read.
    #[error("reading {}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A module file is not valid Rust.
    #[error("parsing {}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// `mod name;` names a file that does not exist.
    #[error("{}:{line}: no file for `mod {name};`", file.display())]
    MissingModule { file: PathBuf, line: usize, name: String },
}

/// One parsed source file.
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) ast: syn::File,
    /// The module the file's top level belongs to.
    pub(crate) module: ModId,
}

/// One module: a file's top level, or an inline `mod name { ... }` inside a file.
#[derive(Default)]
pub(crate) struct Module {
    pub(crate) parent: Option<ModId>,
    pub(crate) file: FileId,
    pub(crate) children: HashMap<String, ModId>,
    /// Items defined here (or `#[macro_export]`ed to the root), by name, with the file that defines them.
    pub(crate) items: HashMap<String, FileId>,
    pub(crate) imports: Vec<Import>,
}

/// One leaf of a `use` tree: `use a::b as c;` is alias `c`, path `a::b`; a glob `use a::*;` has no alias.
pub(crate) struct Import {
    pub(crate) alias: Option<String>,
    pub(crate) path: Vec<String>,
    pub(crate) line: usize,
}

#[derive(Default)]
pub(crate) struct Tree {
    pub(crate) files: Vec<SourceFile>,
    pub(crate) modules: Vec<Module>,
}

/// Where the items being collected sit: their file, and where `mod x;` and `#[path]` look from there.
struct Cx {
    file: FileId,
    file_path: PathBuf,
    /// The directory `mod x;` looks in: the file's own for `mod.rs`-like files, else `dir/stem`, plus inline modules.
    dir: PathBuf,
    inline: bool,
}

impl Tree {
    /// Loads the module tree rooted at a crate root file (`src/lib.rs`, `src/main.rs`).
    pub(crate) fn load(root: &Path) -> Result<Self, Error> {
        let mut tree = Self::default();
        tree.load_file(root.to_path_buf(), None, true)?;
        Ok(tree)
    }

    /// Loads a module file; `mod_rs` files (crate roots, `mod.rs`, `#[path]` targets) own their directory.
    fn load_file(&mut self, path: PathBuf, parent: Option<(ModId, String)>, mod_rs: bool) -> Result<(), Error> {
        let text = fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut ast = syn::parse_file(&text).map_err(|e| Error::Parse {
            path: path.clone(),
            line: e.span().start().line,
            message: e.to_string(),
        })?;
        if is_test_only(&ast.attrs) {
            ast.items.clear();
        }
        let file = self.files.len();
        let module = self.add_module(parent, file);
        let items = ast.items.clone();
        let file_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let dir = match path.file_stem() {
            Some(stem) if !mod_rs => file_dir.join(stem),
            _ => file_dir,
        };
        self.files.push(SourceFile {
            path: path.clone(),
            ast,
            module,
        });
        self.collect(
            &items,
            module,
            &Cx {
                file,
                file_path: path,
                dir,
                inline: false,
            },
        )
    }

    fn add_module(&mut self, parent: Option<(ModId, String)>, file: FileId) -> ModId {
        let id = self.modules.len();
        let parent = parent.map(|(parent, name)| {
            self.modules[parent].children.insert(name, id);
            parent
        });
        self.modules.push(Module {
            parent,
            file,
            ..Module::default()
        });
        id
    }

    fn collect(&mut self, items: &[Item], module: ModId, cx: &Cx) -> Result<(), Error> {
        for item in items.iter().filter(|item| !is_test_only(item_attrs(item))) {
            match item {
                Item::Mod(m) => self.collect_mod(m, module, cx)?,
                Item::Use(u) if u.leading_colon.is_none() => flatten_use(&u.tree, &mut Vec::new(), &mut |import| {
                    self.modules[module].imports.push(import);
                }),
                Item::ForeignMod(f) => {
                    for name in f.items.iter().filter_map(foreign_item_name) {
                        self.modules[module].items.insert(name, cx.file);
                    }
                }
                Item::Macro(m) if m.attrs.iter().any(|a| a.path().is_ident("macro_export")) => {
                    if let Some(ident) = &m.ident {
                        self.modules[0].items.insert(name(ident), cx.file);
                        self.modules[module].items.insert(name(ident), cx.file);
                    }
                }
                _ => {
                    if let Some(ident) = item_ident(item) {
                        self.modules[module].items.insert(name(ident), cx.file);
                    }
                }
            }
        }
        Ok(())
    }

    fn collect_mod(&mut self, m: &syn::ItemMod, module: ModId, cx: &Cx) -> Result<(), Error> {
        let mod_name = name(&m.ident);
        let path_attr = m.attrs.iter().find_map(|a| match &a.meta {
            Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        if let Some((_, items)) = &m.content {
            let child = self.add_module(Some((module, mod_name.clone())), cx.file);
            let dir = cx.dir.join(path_attr.unwrap_or(mod_name));
            let inner = Cx {
                file: cx.file,
                file_path: cx.file_path.clone(),
                dir,
                inline: true,
            };
            return self.collect(items, child, &inner);
        }
        let (path, mod_rs) = if let Some(p) = path_attr {
            let base = if cx.inline {
                cx.dir.clone()
            } else {
                cx.file_path.parent().unwrap_or(Path::new("")).into()
            };
            (base.join(p), true)
        } else {
            let flat = cx.dir.join(format!("{mod_name}.rs"));
            let nested = cx.dir.join(&mod_name).join("mod.rs");
            if flat.is_file() {
                (flat, false)
            } else if nested.is_file() {
                (nested, true)
            } else {
                let line = m.ident.span().start().line;
                return Err(Error::MissingModule {
                    file: cx.file_path.clone(),
                    line,
                    name: mod_name,
                });
            }
        };
        self.load_file(path, Some((module, mod_name)), mod_rs)
    }
}

/// An identifier as a name, without any `r#`.
pub(crate) fn name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// Calls `out` for each leaf of a `use` tree, with the path that leads to it.
pub(crate) fn flatten_use(tree: &UseTree, prefix: &mut Vec<String>, out: &mut impl FnMut(Import)) {
    let mut leaf = |ident: &Ident, rename: Option<&Ident>| {
        let mut path = prefix.clone();
        if ident != "self" {
            path.push(name(ident));
        }
        let alias = rename.map(name).or_else(|| path.last().cloned());
        out(Import {
            alias,
            path,
            line: ident.span().start().line,
        });
    };
    match tree {
        UseTree::Path(p) => {
            prefix.push(name(&p.ident));
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => leaf(&n.ident, None),
        UseTree::Rename(r) => leaf(&r.ident, Some(&r.rename)),
        UseTree::Glob(g) => out(Import {
            alias: None,
            path: prefix.clone(),
            line: g.star_token.span.start().line,
        }),
        UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(t, prefix, out)),
    }
}

/// Whether the attributes include a `#[cfg]` that only holds under test: `test`, or `all(..., test, ...)`.
pub(crate) fn is_test_only(attrs: &[Attribute]) -> bool {
    fn test_only(meta: &Meta) -> bool {
        match meta {
            Meta::Path(p) => p.is_ident("test"),
            Meta::List(l) if l.path.is_ident("all") => l
                .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                .is_ok_and(|metas| metas.iter().any(test_only)),
            _ => false,
        }
    }
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .any(|a| a.parse_args::<Meta>().is_ok_and(|m| test_only(&m)))
}

pub(crate) fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The name a non-module item defines in its module, if any.
fn item_ident(item: &Item) -> Option<&Ident> {
    match item {
        Item::Const(i) if i.ident != "_" => Some(&i.ident),
        Item::Enum(i) => Some(&i.ident),
        Item::Fn(i) => Some(&i.sig.ident),
        Item::Macro(i) => i.ident.as_ref(),
        Item::Static(i) => Some(&i.ident),
        Item::Struct(i) => Some(&i.ident),
        Item::Trait(i) => Some(&i.ident),
        Item::TraitAlias(i) => Some(&i.ident),
        Item::Type(i) => Some(&i.ident),
        Item::Union(i) => Some(&i.ident),
        _ => None,
    }
}

fn foreign_item_name(item: &syn::ForeignItem) -> Option<String> {
    match item {
        syn::ForeignItem::Fn(f) => Some(name(&f.sig.ident)),
        syn::ForeignItem::Static(s) => Some(name(&s.ident)),
        syn::ForeignItem::Type(t) => Some(name(&t.ident)),
        _ => None,
    }
}
