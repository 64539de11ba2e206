//! Properties that must hold for every document, checked over a generated corpus: amounts that add up
//! to the cent, payMoney equal to the sum of the lines, a change hash blind to the version alone,
//! one target line per kept source line.

use std::str::FromStr;

use ferry_sandbox::data::Generator;
use ferry_tests::scheme;
use rust_decimal::Decimal;

fn dec(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{value} is not a decimal string")),
    )
    .unwrap()
}

#[test]
fn yonyou_amounts_add_up_to_the_cent_on_every_line() {
    let scheme = scheme("wdt-stockouts-to-yonyou");
    let generator = Generator::new(7);
    let mut lines_checked = 0;
    for i in 0..400 {
        let stockout = generator.stockout(i);
        let doc = scheme.mapper.parse(&stockout.to_string()).unwrap();
        let body = scheme
            .mapper
            .map(&doc)
            .unwrap_or_else(|e| panic!("stockout {i}: {e}"));
        let data = &body["data"];
        let details = data["orderDetails"].as_array().unwrap();
        let mut total = Decimal::ZERO;
        for line in details {
            let sum = dec(&line["oriSum"]);
            assert_eq!(
                dec(&line["orderDetailPrices!oriMoney"]) + dec(&line["orderDetailPrices!oriTax"]),
                sum,
                "{line}"
            );
            assert_eq!(
                dec(&line["orderDetailPrices!natMoney"]) + dec(&line["orderDetailPrices!natTax"]),
                dec(&line["orderDetailPrices!natSum"]),
                "{line}"
            );
            assert_eq!(sum.scale(), 2, "money has two decimals: {line}");
            assert!(["SALE", "GIFT"].contains(&line["orderProductType"].as_str().unwrap()));
            total += sum;
            lines_checked += 1;
        }
        assert_eq!(
            dec(&data["payMoney"]),
            total,
            "stockout {i}: payMoney is the sum of the lines"
        );
        let source_lines = stockout["details_list"].as_array().unwrap().len();
        assert_eq!(
            details.len(),
            source_lines,
            "stockout {i}: one target line per source line"
        );
        assert!(
            data.get("resubmitCheckKey").is_none(),
            "Ferry sets the key per write, the mapping does not"
        );
    }
    assert!(lines_checked > 1000, "checked {lines_checked} lines");
}

/// The change check compares what the target would hold: a new `modified` alone changes nothing
/// (so it costs no target call), any other change does.
#[test]
fn the_change_hash_ignores_the_version_and_follows_the_content() {
    use ferry_common::engine::change_hash;
    for (id, list, kind) in [
        ("wdt-stockouts-to-yonyou", "details_list", "stockout"),
        ("wdt-trades-to-kingdee", "goods_list", "order"),
    ] {
        let scheme = scheme(id);
        let generator = Generator::new(1);
        let mut doc = if kind == "order" {
            generator.order(5)
        } else {
            generator.stockout(5)
        };
        let hash = |doc: &serde_json::Value| {
            let body = scheme
                .mapper
                .map(&scheme.mapper.parse(&doc.to_string()).unwrap())
                .unwrap();
            change_hash(
                &scheme.mapper,
                scheme.target_api.idempotency_key.as_deref(),
                &body,
            )
        };
        let first = hash(&doc);
        assert_eq!(first, hash(&doc), "{id}: same document, same hash");
        doc["modified"] = "2026-12-01 10:00:00".into();
        assert_eq!(first, hash(&doc), "{id}: only the version changed");
        doc[list][0]["num"] = "9.0000".into();
        assert_ne!(first, hash(&doc), "{id}: a line changed");
    }
    // A target field derived from the version alone is left out of the hash, and so is the
    // target's idempotency key, whatever the mapping puts there.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemes/wdt-stockouts-to-yonyou.yaml"),
    )
    .unwrap()
    .replace(
        "    code: \"{{ doc.order_no }}\"",
        "    code: \"{{ doc.order_no }}\"\n    resubmitCheckKey: \"{{ md5(doc.stockout_id ~ doc.modified) }}\"\n    source: \"synced {{ doc.modified }}\"",
    );
    let scheme =
        ferry_common::Scheme::load_str("version.yaml", &text, &ferry_sandbox::demo_variable)
            .unwrap();
    assert_eq!(scheme.mapper.version_only_fields(), ["source"]);
    let mut doc = Generator::new(1).stockout(5);
    let hash = |doc: &serde_json::Value| {
        let body = scheme
            .mapper
            .map(&scheme.mapper.parse(&doc.to_string()).unwrap())
            .unwrap();
        assert!(
            body["data"]["source"]
                .as_str()
                .unwrap()
                .starts_with("synced ")
        );
        change_hash(&scheme.mapper, Some("resubmitCheckKey"), &body)
    };
    let first = hash(&doc);
    doc["modified"] = "2026-12-01 10:00:00".into();
    assert_eq!(first, hash(&doc));
}

#[test]
fn kingdee_bodies_keep_every_sold_line_and_the_bill_number() {
    let scheme = scheme("wdt-trades-to-kingdee");
    let generator = Generator::new(3);
    for i in 0..400 {
        let order = generator.order(i);
        let body = scheme
            .mapper
            .map(&scheme.mapper.parse(&order.to_string()).unwrap())
            .unwrap();
        assert_eq!(body["billno"], order["trade_no"]);
        let sold: Vec<_> = order["goods_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["refund_status"] != "5")
            .collect();
        let entries = body["material_entity"].as_array().unwrap();
        assert_eq!(entries.len(), sold.len(), "order {i}");
        for (entry, line) in entries.iter().zip(sold) {
            assert_eq!(entry["materialid_id"], line["spec_no"]);
            assert_eq!(entry["is_free"], line["gift_type"] != "0");
        }
    }
}
