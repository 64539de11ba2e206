//! Ferry's shared library: integration schemes, the mapping engine and the API catalogs.
//!
//! The domain here knows nothing of AWS: stores, queues and connectors will sit behind small traits
//! so the same engine runs in the Lambdas and on the embedded default.

pub mod bundled;
pub mod catalog;
pub mod connector;
pub mod error;
pub mod mapping;
pub mod scheme;
pub mod time;

pub use error::{Domain, RetryHint};
pub use mapping::{DocumentError, FieldError, Mapper};
pub use scheme::{Diagnostic, Scheme, SchemeError, Severity};
