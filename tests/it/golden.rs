//! Golden files: realistic WDT documents (tests/golden/SCHEME/CASE.input.json) mapped by the bundled
//! schemes and compared field by field with CASE.expected.json, or, for documents that must fail,
//! with the exact error in CASE.expected.txt. `FERRY_BLESS=1` rewrites the expected files.

use std::path::Path;

use ferry_common::mapping::parse_document;
use ferry_sandbox::data::Generator;
use ferry_tests::{golden, json_diff, scheme};

fn bless() -> bool {
    std::env::var_os("FERRY_BLESS").is_some()
}

/// Maps `input` with scheme `stem` and compares with the expected file beside `case`.
fn check_case(stem: &str, case: &str, input: &str) -> Vec<String> {
    let scheme = scheme(stem);
    let doc = parse_document(input).expect("golden inputs are JSON");
    let result = scheme.mapper.map(&doc);
    // The projected parse (only the fields the scheme reads) must map identically.
    let projected = scheme.mapper.parse(input).expect("golden inputs are JSON");
    assert_eq!(
        scheme.mapper.map(&projected),
        result,
        "{case}: projected parse maps differently"
    );

    let json_path = golden(&format!("{stem}/{case}.expected.json"));
    let text_path = golden(&format!("{stem}/{case}.expected.txt"));
    match result {
        Ok(body) => {
            if bless() {
                std::fs::write(
                    &json_path,
                    serde_json::to_string_pretty(&body).unwrap() + "\n",
                )
                .unwrap();
            }
            assert!(
                !text_path.exists(),
                "{case}: mapped, but {} expects an error",
                text_path.display()
            );
            let expected: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&json_path)
                    .unwrap_or_else(|_| panic!("missing {}", json_path.display())),
            )
            .unwrap();
            json_diff(&expected, &body)
                .into_iter()
                .map(|d| format!("{stem}/{case}: {d}"))
                .collect()
        }
        Err(error) => {
            if bless() {
                std::fs::write(&text_path, format!("{error}\n")).unwrap();
            }
            let expected = std::fs::read_to_string(&text_path).unwrap_or_else(|_| {
                panic!("{case} failed ({error}) and has no {}", text_path.display())
            });
            if expected.trim_end() == error.to_string() {
                vec![]
            } else {
                vec![format!(
                    "{stem}/{case}: error\n  got:      {error}\n  expected: {}",
                    expected.trim_end()
                )]
            }
        }
    }
}

fn cases(stem: &str) -> Vec<String> {
    let dir = golden(stem);
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".input.json")
                .map(str::to_owned)
        })
        .collect();
    cases.sort();
    cases
}

fn run_all(stem: &str) {
    let mut failures = Vec::new();
    let cases = cases(stem);
    assert!(
        cases.len() >= 3,
        "{stem}: expected golden cases, found {cases:?}"
    );
    for case in &cases {
        let input = std::fs::read_to_string(golden(&format!("{stem}/{case}.input.json"))).unwrap();
        failures.extend(check_case(stem, case, &input));
    }
    assert!(
        failures.is_empty(),
        "golden differences:\n{}",
        failures.join("\n")
    );
}

#[test]
fn trades_to_kingdee_golden_files() {
    run_all("wdt-trades-to-kingdee");
}

#[test]
fn stockouts_to_yonyou_golden_files() {
    run_all("wdt-stockouts-to-yonyou");
}

/// The sandbox's order 999 is a 300-line wholesale order; its bodies are kept as golden files.
#[test]
fn three_hundred_line_documents_golden_files() {
    let generator = Generator::new(42);
    let order = generator.order(999);
    assert_eq!(order["goods_list"].as_array().unwrap().len(), 300);
    let failures = check_case(
        "wdt-trades-to-kingdee",
        "generated-300-lines",
        &order.to_string(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stockout = generator.stockout(999);
    let failures = check_case(
        "wdt-stockouts-to-yonyou",
        "generated-300-lines",
        &stockout.to_string(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        Path::new(&golden(
            "wdt-trades-to-kingdee/generated-300-lines.expected.json"
        ))
        .exists()
    );
}
