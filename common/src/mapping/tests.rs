//! Unit tests of the mapper on a small scheme: templates, parameters, error attribution in fused
//! groups, required and optional fields, value-map policies.

use super::*;
use crate::scheme::Scheme;

const SCHEME: &str = r#"
id: unit-test
name: unit test
source:
  connector: wdt
  api: wdt.trade.query
  transport: openapi2
  params:
    start_time: "{{ LAST_SYNC_TIME }}"
    end_time: "{{ CURRENT_TIME }}"
    page_size: "{{ PAGINATION_PAGE_SIZE }}"
    page_no: "{{ PAGINATION_START_PAGE }}"
    status: 110
    shop_no: "{{ vars.shop }}"
  key: trade_id
  version: modified
  window: { max_span: 60m, lookback: 10m, settle_delay: 1m }
variables:
  shop: { value: tmall-001 }
value_maps:
  customer: { unmapped: fail, entries: { tmall-001: C1 } }
  unit: { unmapped: passthrough, entries: { "1": PCS } }
target:
  connector: kingdee
  api: jdy/sal/sal_order_save
  fields:
    billdate: "{{ date(doc.trade_time) }}"
    billno: "SO-{{ doc.trade_no }}/{{ vars.shop }}"
    customerid_id: "{{ maps.customer(doc.shop_no) }}"
    remark: "{{ doc.buyer_message or none }}"
  lines:
    material_entity:
      from: goods_list
      filter: "dec(line.num) != '0'"
      fields:
        materialid_id: "{{ line.spec_no }}"
        qty: "{{ dec(line.num) }}"
        taxprice: "{{ dec(line.share_price, 2) }}"
        unit_id: "{{ maps.unit(line.base_unit_id) }}"
        is_free: "{{ line.gift_type | string != '0' }}"
        price: "{{ div(line.share_price, add(1, line.tax_rate), 2) }}"
"#;

fn mapper() -> Mapper {
    mapper_of(SCHEME)
}

/// The mapper of a variant of the test scheme.
fn mapper_of(text: &str) -> Mapper {
    Scheme::load_str("unit.yaml", text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .mapper
}

fn map(doc: serde_json::Value) -> Result<serde_json::Value, DocumentError> {
    let mapper = mapper();
    mapper.map(&mapper.parse(&doc.to_string()).unwrap())
}

fn order() -> serde_json::Value {
    serde_json::json!({
        "trade_id": "T1", "trade_no": "JY1", "shop_no": "tmall-001", "trade_time": "2026-11-02 23:59:59",
        "goods_list": [
            {"spec_no": "S1", "num": "2.0000", "share_price": "10.005", "base_unit_id": 1, "gift_type": 0, "tax_rate": "0.13"},
            {"spec_no": "S2", "num": "0", "share_price": "1", "gift_type": "0"},
            {"spec_no": "S3", "num": 1, "share_price": 0, "gift_type": "1", "tax_rate": "0.13"}
        ]
    })
}

#[test]
fn maps_templates_lookups_and_filters() {
    let body = map(order()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "billdate": "2026-11-02",
            "billno": "SO-JY1/tmall-001",
            "customerid_id": "C1",
            "material_entity": [
                {"materialid_id": "S1", "qty": "2", "taxprice": "10.01", "unit_id": "PCS", "is_free": false, "price": "8.85"},
                {"materialid_id": "S3", "qty": "1", "taxprice": "0.00", "is_free": true, "price": "0.00"}
            ]
        })
    );
}

#[test]
fn a_failing_field_in_a_fused_group_is_named_alone() {
    let mut doc = order();
    doc["goods_list"][0]["share_price"] = "ten".into();
    let err = map(doc).unwrap_err();
    assert_eq!(err.key, "trade_id=T1");
    assert_eq!(
        err.fields,
        [
            FieldError {
                path: "material_entity[0].taxprice".into(),
                reason: "dec(): 'ten' is not a decimal number".into()
            },
            FieldError {
                path: "material_entity[0].price".into(),
                reason: "div(): 'ten' is not a decimal number".into()
            },
        ]
    );
}

#[test]
fn required_fields_that_come_out_empty_fail_and_optional_ones_are_left_out() {
    let mut doc = order();
    doc.as_object_mut().unwrap().remove("trade_time");
    doc["goods_list"][0].as_object_mut().unwrap().remove("num");
    let err = map(doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document trade_id=T1: field material_entity[0] (filter): dec(): the value is missing, expected a number; \
         field billdate: date(): the time is missing"
    );
    let mut doc = order();
    doc["goods_list"] = serde_json::json!([{"spec_no": "S2", "num": "0"}]);
    let err = map(doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document trade_id=T1: field material_entity: required by the target API, but no line of goods_list was kept"
    );
}

#[test]
fn unmapped_values_follow_the_policy() {
    let mut doc = order();
    doc["goods_list"][0]["base_unit_id"] = 7.into();
    assert_eq!(
        map(doc.clone()).unwrap()["material_entity"][0]["unit_id"],
        "7",
        "passthrough sends the code"
    );
    doc["shop_no"] = "jd-001".into();
    assert_eq!(
        map(doc).unwrap_err().to_string(),
        "document trade_id=T1: field customerid_id: 'jd-001' has no entry in value map 'customer' (its policy for unmapped values is fail)"
    );
}

#[test]
fn request_parameters_render_per_page() {
    let params = mapper()
        .render_params(&PageRequest {
            window_start: "2026-11-02 10:00:00".into(),
            window_end: "2026-11-02 10:59:59".into(),
            page_size: 100,
            page_no: 3,
        })
        .unwrap();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        [
            ("start_time", "2026-11-02 10:00:00"),
            ("end_time", "2026-11-02 10:59:59"),
            ("page_size", "100"),
            ("page_no", "3"),
            ("status", "110"),
            ("shop_no", "tmall-001"),
        ]
    );
}

#[test]
fn projection_keeps_what_the_scheme_reads() {
    let mapper = mapper();
    let doc = mapper.parse(&order().to_string()).unwrap();
    assert!(doc.get_attr("trade_no").unwrap().as_str().is_some());
    let parsed_line = doc
        .get_attr("goods_list")
        .unwrap()
        .get_item_by_index(0)
        .unwrap();
    assert!(parsed_line.get_attr("spec_no").unwrap().as_str().is_some());
    let full = parse_document(&order().to_string()).unwrap();
    assert_eq!(mapper.map(&doc), mapper.map(&full));
}

#[test]
fn a_filter_that_yields_an_empty_list_drops_the_line() {
    // `| list` keeps the filter a general expression, so it runs fused with the line's fields.
    let text = SCHEME.replace(
        "filter: \"dec(line.num) != '0'\"",
        "filter: \"line.suite_no | list\"",
    );
    assert!(text.contains("line.suite_no | list"));
    let mapper = mapper_of(&text);
    let mut doc = order();
    doc["goods_list"][0]["suite_no"] = serde_json::json!([]);
    doc["goods_list"][1]["suite_no"] = serde_json::json!(["TZ-1"]);
    doc["goods_list"][1]["tax_rate"] = "0.13".into();
    doc["goods_list"][2]["suite_no"] = serde_json::json!(["TZ-2"]);
    let body = mapper
        .map(&mapper.parse(&doc.to_string()).unwrap())
        .unwrap();
    let kept: Vec<&str> = body["material_entity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["materialid_id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["S2", "S3"]);
}

#[test]
fn fused_fields_see_the_calcs_of_their_line() {
    let text = SCHEME.replace(
        "      fields:\n        materialid_id:",
        "      calc:\n        code: \"{{ line.spec_no | lower }}\"\n      fields:\n        remark: \"{{ calc.code ~ '!' }}\"\n        materialid_id:",
    );
    assert!(text.contains("calc.code"));
    let mapper = mapper_of(&text);
    let body = mapper
        .map(&mapper.parse(&order().to_string()).unwrap())
        .unwrap();
    let remarks: Vec<&str> = body["material_entity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["remark"].as_str().unwrap())
        .collect();
    assert_eq!(remarks, ["s1!", "s3!"]);
}
