//! `ferry check`: validates scheme files and scheme folders as a deployment would load them, and
//! prints every problem as `FILE:LINE:COL: MESSAGE`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use ferry_common::{Scheme, SchemeError};

use crate::error::{CliError, EXIT_PROBLEMS};

/// Options of `ferry check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scheme files (YAML) or folders of them.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Checks scheme files and scheme folders (every scheme in one, its entries files and its
/// `catalog/`), as a deployment would load them: each problem as `FILE:LINE:COL: MESSAGE`,
/// warnings included (a variable without a value here is a warning: the deployment sets it).
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, CliError> {
    let paths = &args.files;
    let mut failed = 0;
    let mut total = 0;
    let mut ids: HashMap<String, String> = HashMap::new();
    for path in paths {
        let loaded: Vec<Result<Scheme, SchemeError>> = if path.is_dir() {
            match ferry_common::scheme::load_folder(path, &ferry_common::scheme::process_env) {
                Ok(schemes) => schemes.into_iter().map(Ok).collect(),
                Err(e) => e.files.into_iter().map(Err).collect(),
            }
        } else {
            // A scheme file sees the catalog files of its folder, as the folder's deployment would.
            vec![ferry_common::scheme::load_in_folder(
                path,
                &ferry_common::scheme::process_env,
            )]
        };
        for result in loaded {
            total += 1;
            match result {
                Ok(scheme) => {
                    for warning in &scheme.warnings {
                        writeln!(err, "{}", warning.display(&scheme.file))?;
                    }
                    let id = &scheme.config.id;
                    if let Some(other) = ids.insert(scheme.id().to_owned(), scheme.file.clone()) {
                        failed += 1;
                        writeln!(
                            err,
                            "{}:{}:{}: id '{}' is already used by {other}",
                            scheme.file,
                            id.referenced.line(),
                            id.referenced.column(),
                            scheme.id()
                        )?;
                        continue;
                    }
                    writeln!(
                        out,
                        "{}: ok ({}: {} {} → {} {}; files version {})",
                        scheme.file,
                        scheme.id(),
                        scheme.source_api.connector,
                        scheme.source_api.api,
                        scheme.target_api.connector,
                        scheme.target_api.api,
                        scheme.version,
                    )?;
                }
                Err(e) => {
                    failed += 1;
                    writeln!(err, "{e}")?;
                }
            }
        }
    }
    if failed > 0 {
        writeln!(err, "{failed} of {total} scheme files have errors")?;
        return Ok(EXIT_PROBLEMS);
    }
    Ok(0)
}
