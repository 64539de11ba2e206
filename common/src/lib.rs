//! Ferry's shared library: integration schemes, the mapping engine and the API catalogs.
//!
//! The domain here knows nothing of AWS: stores, queues and connectors sit behind small traits
//! (`engine::ports`), so the same engine runs in the Lambdas and on the embedded default
//! (`embedded`, SQLite, behind the `embedded` feature).

#[cfg(feature = "aws")]
pub mod aws;
pub mod bundled;
pub mod catalog;
pub mod connector;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod engine;
pub mod error;
pub mod mapping;
pub mod memory;
pub mod reconcile;
pub mod scheme;
pub mod time;

pub use error::{Classified, Domain, RetryHint};
pub use mapping::{DocumentError, FieldError, Mapper};
pub use scheme::{Diagnostic, Scheme, SchemeError, Severity};
