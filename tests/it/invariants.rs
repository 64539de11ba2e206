//! Properties that must hold for every document, checked over a generated corpus: amounts that add up
//! to the cent, payMoney equal to the sum of the lines, idempotency keys that are stable and short,
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
        let key = data["resubmitCheckKey"].as_str().unwrap();
        assert!(key.len() <= 32 && !key.is_empty());
    }
    assert!(lines_checked > 1000, "checked {lines_checked} lines");
}

#[test]
fn resubmit_check_key_is_deterministic_and_changes_with_the_version() {
    let scheme = scheme("wdt-stockouts-to-yonyou");
    let mut stockout = Generator::new(1).stockout(5);
    let key = |doc: &serde_json::Value| {
        let body = scheme
            .mapper
            .map(&scheme.mapper.parse(&doc.to_string()).unwrap())
            .unwrap();
        body["data"]["resubmitCheckKey"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = key(&stockout);
    assert_eq!(first, key(&stockout), "same document, same key");
    // Re-approval changes order_no, not the key: the document is the same stock-out.
    stockout["order_no"] = "CK20261201999999".into();
    assert_eq!(first, key(&stockout));
    stockout["modified"] = "2026-12-01 10:00:00".into();
    assert_ne!(first, key(&stockout), "a new version is a new save");
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
