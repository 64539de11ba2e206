//! The engine's view of the connectors: a source that answers one page, and a target that creates
//! bills, updates them line by line and finds them by number. The connectors implement these
//! (`connector/*/source.rs`, `connector/*/target.rs`) and the registry (`connector::registry`)
//! builds them from a scheme; poll and push name no vendor.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::connector::{CallError, Saved};

/// One page of documents.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The number of documents in the whole window, as the service reported it: page 0 always
    /// has it; later pages may omit it or send -1 (read as `None`).
    pub total_count: Option<u64>,
    /// The documents of this page, as the source sent them.
    pub documents: Vec<Value>,
}

/// Where documents come from: one page of rendered request parameters at a time.
pub trait SourceApi: Send + Sync {
    /// One page.
    fn query(
        &self,
        params: &[(String, String)],
    ) -> impl Future<Output = Result<Page, CallError>> + Send;
}

/// A bill the target holds: its id, and its lines' ids in order when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// The target's id of the bill.
    pub id: String,
    /// The ids of its lines, in order (`None`: not known; the target is asked when needed).
    pub lines: Option<Vec<String>>,
}

/// An update addressed line by line to a bill, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Addressed {
    /// The exact body to send.
    pub wire: Value,
    /// Lines of the bill the update does not mention. A target that deletes lines left out of a
    /// modify drops them; one that keeps them keeps a line the source no longer has, which only
    /// [`TargetApi::kept`] can tell.
    pub left_out: Vec<String>,
}

/// Where documents go: a target API that creates bills, updates them line by line, and finds
/// them by number (so a write whose outcome is unknown can be settled).
pub trait TargetApi: Send + Sync {
    /// The bill number a person would search for (the catalog's `target.number` field).
    fn number(&self, body: &Value) -> String;

    /// Sends `wire` as it is: a create, or an update [`TargetApi::address`] built.
    fn send(&self, wire: &Value) -> impl Future<Output = Result<Saved, CallError>> + Send;

    /// The update of `bill` to the mapped `body`: the bill named, each of its existing lines
    /// addressed by id (asking the target for them when `bill.lines` is unknown or stale by
    /// nature), new lines added, lines the source no longer has removed where the target allows.
    fn address(
        &self,
        body: &Value,
        bill: &Bill,
    ) -> impl Future<Output = Result<Addressed, CallError>> + Send;

    /// How long sending `wire` again answers with the outcome of its first success (its
    /// idempotency key's window); `None` when it carries no key.
    fn repeat_window(&self, wire: &Value) -> Option<Duration>;

    /// The bill numbered exactly `number`, if the target holds one.
    fn find(&self, number: &str) -> impl Future<Output = Result<Option<Bill>, CallError>> + Send;

    /// Whether bill `id` still holds any of `lines` (left out of an update).
    fn kept(
        &self,
        id: &str,
        lines: &[String],
    ) -> impl Future<Output = Result<bool, CallError>> + Send;
}

/// A target API of any registered connector, chosen by the scheme at run time: the registry
/// (`connector::registry`) builds one, and push runs over it without knowing whose it is. Calls go
/// through one boxed future each, a cost far below the HTTP call it makes.
pub struct AnyTarget(Box<dyn DynTarget>);

impl AnyTarget {
    /// Wraps a connector's target.
    pub fn new(target: impl TargetApi + Debug + 'static) -> AnyTarget {
        AnyTarget(Box::new(target))
    }
}

impl Debug for AnyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// [`TargetApi`] in a form that can sit behind `dyn` (its futures boxed).
trait DynTarget: Send + Sync + Debug {
    fn number(&self, body: &Value) -> String;
    fn send<'a>(&'a self, wire: &'a Value) -> BoxFuture<'a, Result<Saved, CallError>>;
    fn address<'a>(
        &'a self,
        body: &'a Value,
        bill: &'a Bill,
    ) -> BoxFuture<'a, Result<Addressed, CallError>>;
    fn repeat_window(&self, wire: &Value) -> Option<Duration>;
    fn find<'a>(&'a self, number: &'a str) -> BoxFuture<'a, Result<Option<Bill>, CallError>>;
    fn kept<'a>(
        &'a self,
        id: &'a str,
        lines: &'a [String],
    ) -> BoxFuture<'a, Result<bool, CallError>>;
}

impl<T: TargetApi + Debug> DynTarget for T {
    fn number(&self, body: &Value) -> String {
        TargetApi::number(self, body)
    }
    fn send<'a>(&'a self, wire: &'a Value) -> BoxFuture<'a, Result<Saved, CallError>> {
        TargetApi::send(self, wire).boxed()
    }
    fn address<'a>(
        &'a self,
        body: &'a Value,
        bill: &'a Bill,
    ) -> BoxFuture<'a, Result<Addressed, CallError>> {
        TargetApi::address(self, body, bill).boxed()
    }
    fn repeat_window(&self, wire: &Value) -> Option<Duration> {
        TargetApi::repeat_window(self, wire)
    }
    fn find<'a>(&'a self, number: &'a str) -> BoxFuture<'a, Result<Option<Bill>, CallError>> {
        TargetApi::find(self, number).boxed()
    }
    fn kept<'a>(
        &'a self,
        id: &'a str,
        lines: &'a [String],
    ) -> BoxFuture<'a, Result<bool, CallError>> {
        TargetApi::kept(self, id, lines).boxed()
    }
}

impl TargetApi for AnyTarget {
    fn number(&self, body: &Value) -> String {
        self.0.number(body)
    }

    async fn send(&self, wire: &Value) -> Result<Saved, CallError> {
        self.0.send(wire).await
    }

    async fn address(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        self.0.address(body, bill).await
    }

    fn repeat_window(&self, wire: &Value) -> Option<Duration> {
        self.0.repeat_window(wire)
    }

    async fn find(&self, number: &str) -> Result<Option<Bill>, CallError> {
        self.0.find(number).await
    }

    async fn kept(&self, id: &str, lines: &[String]) -> Result<bool, CallError> {
        self.0.kept(id, lines).await
    }
}
