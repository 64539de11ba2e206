//! A scheme folder: what a deployment runs. Every `*.yaml` directly in it is a scheme; its value
//! maps' entries files sit beside them (any sub-folder); `catalog/*.yaml` adds API descriptions.
//! The folder loads whole or not at all, every problem of every file reported.

use std::collections::HashMap;
use std::path::Path;

use super::{Diagnostic, Loader, Scheme, SchemeError};
use crate::catalog::{Catalog, yaml_files};
use crate::mapping::EnvLookup;

/// Every problem of a scheme folder that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderError {
    /// One entry per file with problems.
    pub files: Vec<SchemeError>,
}

impl std::fmt::Display for FolderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{file}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FolderError {}

fn whole_file(file: String, message: String) -> SchemeError {
    SchemeError {
        file,
        diagnostics: vec![Diagnostic::error(0, 0, message)],
    }
}

/// The built-in catalog plus the files of `dir`'s `catalog/`.
fn folder_catalog(dir: &Path) -> Result<Catalog, SchemeError> {
    let catalog_dir = dir.join("catalog");
    Catalog::with_folder(&catalog_dir).map_err(|e| whole_file(catalog_dir.display().to_string(), e))
}

/// Loads and checks one scheme file as its folder's deployment would: with the catalog files of
/// its folder's `catalog/`, and `vars` for its variables.
pub fn load_in_folder(path: &Path, vars: EnvLookup<'_>) -> Result<Scheme, SchemeError> {
    let catalog = folder_catalog(path.parent().unwrap_or(Path::new(".")))?;
    Scheme::load_file_with(
        path,
        &Loader {
            catalog: &catalog,
            vars,
        },
    )
}

/// Loads and checks every scheme in `dir`, with `vars` for their variables; refuses a folder
/// without schemes, two schemes with one id, and any scheme with an error.
pub fn load_folder(dir: &Path, vars: EnvLookup<'_>) -> Result<Vec<Scheme>, FolderError> {
    let shown = dir.display().to_string();
    if !dir.is_dir() {
        return Err(FolderError {
            files: vec![whole_file(shown, "is not a folder of scheme files".into())],
        });
    }
    let catalog = folder_catalog(dir).map_err(|e| FolderError { files: vec![e] })?;
    let files = yaml_files(dir).map_err(|e| FolderError {
        files: vec![whole_file(shown.clone(), e)],
    })?;
    if files.is_empty() {
        return Err(FolderError {
            files: vec![whole_file(shown, "holds no scheme files (*.yaml)".into())],
        });
    }
    let loader = Loader {
        catalog: &catalog,
        vars,
    };
    let mut schemes = Vec::new();
    let mut problems = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    for path in files {
        match Scheme::load_file_with(&path, &loader) {
            Ok(scheme) => {
                if let Some(other) = ids.insert(scheme.id().to_owned(), scheme.file.clone()) {
                    let id = &scheme.config.id;
                    problems.push(SchemeError {
                        file: scheme.file.clone(),
                        diagnostics: vec![Diagnostic::error(
                            id.referenced.line(),
                            id.referenced.column(),
                            format!("id '{}' is already used by {other}", scheme.id()),
                        )],
                    });
                    continue;
                }
                schemes.push(scheme);
            }
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(schemes)
    } else {
        Err(FolderError { files: problems })
    }
}
