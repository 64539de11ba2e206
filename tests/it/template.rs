//! template.yaml's promises that the linters cannot see: every SQS event source reports failures
//! per message and drains a queue with a dead-letter queue and a long enough visibility timeout;
//! the functions' runtime and build; the table as the DynamoDB adapter expects it; one schedule
//! whose event the poll function reads as a tick of every scheme; both functions on the schemes
//! layer, built by a Makefile target that runs `ferry check`; no wildcard on data actions; no
//! credential in an environment variable. (cfn-lint and `sam validate --lint` run in
//! scripts/test.) Short-form tags (`!Ref X`) read as their scalar (`X`).

use ferry_common::aws::dynamo::{BY_LOOKUP, BY_NUMBER, BY_STATE, EXPIRES_AT};
use ferry_poll::PollRequest;
use ferry_tests::workspace;
use serde_json::Value;

fn template_text() -> String {
    std::fs::read_to_string(workspace().join("template.yaml")).unwrap()
}

/// A number written as a number or as text (template values are often quoted).
fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|t| t.parse().ok()))
}

fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(name, r)| (name.as_str(), &r["Properties"]))
        .collect()
}

/// Every problem found in a template's text.
fn problems(text: &str) -> Vec<String> {
    let t: Value = match serde_saphyr::from_str(text) {
        Ok(t) => t,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    let mut out = Vec::new();
    let globals = &t["Globals"]["Function"];
    if globals["Runtime"] != "provided.al2023" {
        out.push(format!(
            "runtime is {}, not provided.al2023",
            globals["Runtime"]
        ));
    }
    if globals["Architectures"] != serde_json::json!(["arm64"]) {
        out.push("functions are not arm64".into());
    }
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    for (name, _) in &functions {
        if t["Resources"][name]["Metadata"]["BuildMethod"] != "rust-cargolambda" {
            out.push(format!("{name} is not built with rust-cargolambda"));
        }
    }
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    let mut consumed = 0;
    let mut schedules = 0;
    for (name, function) in &functions {
        // A literal timeout, or a parameter's: every value it allows.
        let timeouts: Vec<u64> = match &function["Timeout"] {
            Value::String(parameter) => t["Parameters"][parameter.as_str()]["AllowedValues"]
                .as_array()
                .map(|values| values.iter().filter_map(number).collect())
                .unwrap_or_else(|| {
                    number(&t["Parameters"][parameter.as_str()]["Default"])
                        .into_iter()
                        .collect()
                }),
            other => vec![number(other).unwrap_or(3)],
        };
        let Some(events) = function["Events"].as_object() else {
            continue;
        };
        for (event_name, event) in events {
            let p = &event["Properties"];
            match event["Type"].as_str() {
                Some("SQS") => {
                    consumed += 1;
                    let types = p["FunctionResponseTypes"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if !types.iter().any(|v| v == "ReportBatchItemFailures") {
                        out.push(format!("{name}.{event_name} lacks FunctionResponseTypes: [ReportBatchItemFailures]"));
                    }
                    if p["ScalingConfig"]["MaximumConcurrency"].is_null() {
                        out.push(format!(
                            "{name}.{event_name} has no ScalingConfig.MaximumConcurrency"
                        ));
                    }
                    let queue = p["Queue"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches(".Arn");
                    let Some((_, q)) = queues.iter().find(|(n, _)| *n == queue) else {
                        out.push(format!("{name}.{event_name} reads {queue}, which is not a queue of the template"));
                        continue;
                    };
                    let dead = q["RedrivePolicy"]["deadLetterTargetArn"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches(".Arn");
                    if !queues.iter().any(|(n, _)| *n == dead) {
                        out.push(format!(
                            "{queue} has no dead-letter queue (RedrivePolicy.deadLetterTargetArn)"
                        ));
                    }
                    for &timeout in &timeouts {
                        // A literal, or `!FindInMap [MAP, TIMEOUT-PARAMETER, ATTRIBUTE]` keyed by
                        // the timeout.
                        let visibility = match &q["VisibilityTimeout"] {
                            Value::Array(path) if path.len() == 3 => number(
                                &t["Mappings"][path[0].as_str().unwrap_or_default()]
                                    [timeout.to_string().as_str()]
                                    [path[2].as_str().unwrap_or_default()],
                            ),
                            other => number(other),
                        }
                        .unwrap_or(30);
                        if visibility < 6 * timeout {
                            out.push(format!("{queue}'s visibility timeout {visibility}s is under 6 × {name}'s {timeout}s"));
                        }
                    }
                }
                Some("Schedule") => {
                    schedules += 1;
                    // Without an Input, EventBridge delivers its Scheduled Event.
                    let delivered = match p["Input"].as_str() {
                        Some(input) => serde_json::from_str(input).unwrap_or(Value::Null),
                        None => ferry_tests::event("scheduled-event-without-scheme.json"),
                    };
                    match PollRequest::parse(&delivered) {
                        Ok(PollRequest::Tick) => {}
                        Ok(other) => out.push(format!(
                            "{name}.{event_name} polls {} only, not every scheme at its interval",
                            other.scheme()
                        )),
                        Err(e) => out.push(format!(
                            "{name}.{event_name}'s input is refused by poll: {e}"
                        )),
                    }
                }
                _ => {}
            }
        }
    }
    if consumed == 0 {
        out.push("no function consumes a queue".into());
    }
    if schedules != 1 {
        out.push(format!(
            "{schedules} schedules: one tick drives every scheme at its own interval"
        ));
    }
    // The scheme folder: a layer built by its Makefile, whose target checks the folder first.
    let layers = resources_of_type(&t, "AWS::Serverless::LayerVersion");
    match layers.as_slice() {
        [(layer, l)] => {
            if t["Resources"][*layer]["Metadata"]["BuildMethod"] != "makefile" {
                out.push(format!("{layer} is not built by its Makefile"));
            }
            let dir = l["ContentUri"].as_str().unwrap_or_default();
            let makefile =
                std::fs::read_to_string(workspace().join(dir).join("Makefile")).unwrap_or_default();
            let target = format!("build-{layer}:");
            match makefile.split_once(&target) {
                Some((_, recipe)) if recipe.contains("check \"$(FERRY_SCHEMES)\"") => {}
                _ => out.push(format!(
                    "{dir}Makefile has no {target} target that runs ferry check first"
                )),
            }
            for (name, f) in &functions {
                if !f["Layers"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|r| r == *layer))
                {
                    out.push(format!("{name} does not run on the schemes layer"));
                }
            }
            if t["Globals"]["Function"]["Environment"]["Variables"]["FERRY_SCHEME_DIR"]
                != "/opt/schemes"
            {
                out.push("FERRY_SCHEME_DIR is not the layer's /opt/schemes".into());
            }
        }
        other => out.push(format!(
            "{} scheme layers: the functions run one scheme folder",
            other.len()
        )),
    }
    // The table, as the adapter (and its create_table) expects it.
    match resources_of_type(&t, "AWS::DynamoDB::Table").first() {
        None => out.push("no DynamoDB table".into()),
        Some((_, table)) => {
            if table["BillingMode"] != "PAY_PER_REQUEST" {
                out.push("the table is not on demand".into());
            }
            if table["TimeToLiveSpecification"]
                != serde_json::json!({ "AttributeName": EXPIRES_AT, "Enabled": true })
            {
                out.push(format!("TTL is not enabled on {EXPIRES_AT}"));
            }
            if table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] != true {
                out.push("point-in-time recovery is off".into());
            }
            let indexes: Vec<&str> = table["GlobalSecondaryIndexes"]
                .as_array()
                .map(|l| l.iter().filter_map(|i| i["IndexName"].as_str()).collect())
                .unwrap_or_default();
            for index in [BY_STATE, BY_NUMBER, BY_LOOKUP] {
                if !indexes.contains(&index) {
                    out.push(format!("the table lacks the index {index}"));
                }
            }
        }
    }
    // Least privilege: data actions name their resources.
    for (role, props) in resources_of_type(&t, "AWS::IAM::Role") {
        for policy in props["Policies"].as_array().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let resources: Vec<String> = match &statement["Resource"] {
                    Value::Array(list) => list
                        .iter()
                        .map(|r| r.as_str().unwrap_or("").to_owned())
                        .collect(),
                    other => vec![other.as_str().unwrap_or("").to_owned()],
                };
                if resources.iter().any(|r| r == "*" || r.ends_with(":*")) {
                    out.push(format!(
                        "{role} grants {} on a wildcard resource",
                        statement["Action"]
                    ));
                }
            }
        }
    }
    // Credentials come from Secrets Manager, never from a plain variable.
    for (name, function) in std::iter::once(("Globals", globals)).chain(functions.iter().copied()) {
        if let Some(vars) = function["Environment"]["Variables"].as_object() {
            for var in vars.keys() {
                let upper = var.to_uppercase();
                if (upper.contains("SECRET") && upper != "FERRY_SECRET_ID")
                    || upper.contains("PASSWORD")
                    || upper.contains("TOKEN")
                {
                    out.push(format!("{name} sets {var} in plain environment"));
                }
            }
        }
    }
    out
}

#[test]
fn the_template_keeps_its_promises() {
    let found = problems(&template_text());
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_check_fails_without_batch_item_failures_or_a_dead_letter_queue() {
    let text = template_text();
    let without_reports = text.replace(
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "Enabled: true",
    );
    let found = problems(&without_reports);
    assert!(
        found
            .iter()
            .any(|p| p.contains("lacks FunctionResponseTypes")),
        "{found:#?}"
    );
    let misspelt = text.replace("[ReportBatchItemFailures]", "[ReportBatchItemFailure]");
    assert!(
        problems(&misspelt)
            .iter()
            .any(|p| p.contains("ReportBatchItemFailures"))
    );
    let without_dlq = text.replace(
        "deadLetterTargetArn: !GetAtt KingdeeDeadLetterQueue.Arn",
        "deadLetterTargetArn: !GetAtt NoSuchQueue.Arn",
    );
    let found = problems(&without_dlq);
    assert!(
        found
            .iter()
            .any(|p| p.contains("KingdeeQueue has no dead-letter queue")),
        "{found:#?}"
    );
    let short = text.replace("Visibility: 720", "Visibility: 360");
    assert!(problems(&short).iter().any(|p| p.contains("under 6 ×")));
    let runtime = text.replace("Runtime: provided.al2023", "Runtime: provided.al2");
    assert!(
        problems(&runtime)
            .iter()
            .any(|p| p.contains("provided.al2023"))
    );
    let wildcard = text.replace("Resource: !GetAtt SyncTable.Arn", "Resource: \"*\"");
    assert!(problems(&wildcard).iter().any(|p| p.contains("wildcard")));
}
