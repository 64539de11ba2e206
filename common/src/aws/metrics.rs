//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per scheme and invocation,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics (no API call, no
//! latency). A small writer rather than a crate: the format is one documented JSON object
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use serde_json::{Map, Value, json};

/// The namespace every Ferry metric is in (the dashboard and alarms read it).
pub const NAMESPACE: &str = "Ferry";

/// A metric's unit, as EMF names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count of things.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// The metrics of one scheme in one invocation, dimensioned by `Scheme` and also without dimension.
#[derive(Clone, Debug)]
pub struct Metrics {
    scheme: String,
    values: Vec<(&'static str, Unit, Value)>,
    properties: Vec<(&'static str, Value)>,
}

impl Metrics {
    /// Empty metrics for `scheme`.
    pub fn new(scheme: &str) -> Metrics {
        Metrics {
            scheme: scheme.to_owned(),
            values: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// Adds a property: a field of the line that is not a metric (Logs Insights can filter and
    /// sum it; CloudWatch bills nothing for it, where each metric is a monthly fee).
    pub fn property(&mut self, name: &'static str, value: Value) {
        self.properties.retain(|(n, _)| *n != name);
        self.properties.push((name, value));
    }

    /// Adds one value (several values of a name become a list: CloudWatch keeps each).
    pub fn put(&mut self, name: &'static str, unit: Unit, value: f64) {
        match self.values.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, Value::Array(list))) => list.push(json!(value)),
            Some((_, _, single)) => *single = json!([single.clone(), value]),
            None => self.values.push((name, unit, json!(value))),
        }
    }

    /// Adds a count.
    pub fn count(&mut self, name: &'static str, value: u64) {
        self.put(name, Unit::Count, value as f64);
    }

    /// The EMF document (`None` when nothing was recorded).
    pub fn document(&self, at_millis: i64) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.name() }))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": at_millis,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    // Per scheme, and summed over every scheme (what the alarms watch, so a
                    // scheme added later is watched without a template change).
                    "Dimensions": [["Scheme"], []],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Scheme".into(), json!(self.scheme));
        for (name, value) in &self.properties {
            root.insert((*name).into(), value.clone());
        }
        for (name, _, value) in &self.values {
            root.insert((*name).into(), value.clone());
        }
        Some(Value::Object(root))
    }

    /// Writes the document as one line on stdout, where the Lambda log agent picks it up.
    pub fn emit(&self) {
        if let Some(document) = self.document(jiff::Timestamp::now().as_millisecond()) {
            println!("{document}");
        }
    }
}
