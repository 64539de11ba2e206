//! Scheme-file errors: broken copies of the bundled schemes must be refused with every problem,
//! each as `file:line:col: message`, exactly as below.

use ferry_tests::{load, workspace};

/// The bundled scheme `stem` with each `(from, to)` replaced once; returns the diagnostics printed.
fn broken(stem: &str, edits: &[(&str, &str)]) -> Vec<String> {
    let mut text =
        std::fs::read_to_string(workspace().join(format!("schemes/{stem}.yaml"))).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{stem} has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    match load("broken.yaml", &text) {
        Ok(_) => vec![],
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

const KINGDEE: &str = "wdt-trades-to-kingdee";
const YONYOU: &str = "wdt-stockouts-to-yonyou";

#[test]
fn structural_errors_name_the_key_and_its_place() {
    assert_eq!(
        broken(KINGDEE, &[("name: 旺店通订单", "nmae: 旺店通订单")]),
        [
            "broken.yaml:5:1: unknown field `nmae`, expected one of id, name, description, source, target, variables, value_maps"
        ]
    );
    assert_eq!(
        broken(KINGDEE, &[("    lookback: 10m", "    look_back: 10m")]),
        [
            "broken.yaml:26:5: unknown field `look_back`, expected one of max_span, lookback, settle_delay, start, interval"
        ]
    );
    assert_eq!(
        broken(KINGDEE, &[("transport: qimen", "transport: qimenx")]),
        ["broken.yaml:13:14: unknown variant `qimenx`, expected one of qimen, openapi2"]
    );
    // Target connectors are the registry's: one it does not hold is refused, naming those it does.
    let unknown = broken(KINGDEE, &[("connector: kingdee", "connector: sap")]);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(
        unknown[0].starts_with("broken.yaml:")
            && unknown[0]
                .ends_with(": unknown target connector `sap`, expected one of kingdee, yonyou"),
        "{unknown:?}"
    );
    assert_eq!(
        broken(KINGDEE, &[("page_size: 100", "page_size: lots")]),
        ["broken.yaml:20:14: expected a whole number, found `lots`"]
    );
}

#[test]
fn source_side_errors() {
    assert_eq!(
        broken(
            KINGDEE,
            &[("api: wdt.trade.query", "api: wdt.trades.query")]
        ),
        [
            "broken.yaml:12:8: unknown wdt API 'wdt.trades.query'; known: wdt.trade.query, wdt.stockout.order.query.trade"
        ]
    );
    assert_eq!(
        broken(YONYOU, &[("key: stockout_id", "key: stockout_idx")]),
        [
            "broken.yaml:23:8: key 'stockout_idx' is not a top-level field of wdt.stockout.order.query.trade"
        ]
    );
    assert_eq!(
        broken(
            KINGDEE,
            &[(
                "    page_no: \"{{ PAGINATION_START_PAGE }}\"",
                "    page_number: \"{{ PAGINATION_START_PAGE }}\""
            )]
        ),
        ["broken.yaml:19:18: 'page_number' is not a request parameter of wdt.trade.query"]
    );
    assert_eq!(
        broken(
            KINGDEE,
            &[(
                "\"{{ LAST_SYNC_TIME }}\"",
                "\"{{LAST_SYNC_TIME datetime}}\""
            )]
        ),
        [
            "broken.yaml:16:17: source.params.start_time: syntax error: unexpected input after expression in \
          `LAST_SYNC_TIME datetime` (write {{ LAST_SYNC_TIME }}: the time format is fixed)"
        ]
    );
    assert_eq!(
        broken(KINGDEE, &[("max_span: 60m", "max_span: 90m")]),
        ["broken.yaml:25:15: window.max_span 90m exceeds the 60m that wdt.trade.query allows"]
    );
    assert_eq!(
        broken(
            YONYOU,
            &[(
                "    is_by_modified: 1      # with a status, filter on the modified time, not the ship time\n",
                ""
            )]
        ),
        Vec::<String>::new(),
        "a missing is_by_modified is only a warning"
    );
}

#[test]
fn mapping_errors_name_the_target_field_and_what_it_reads() {
    assert_eq!(
        broken(KINGDEE, &[("doc.trade_no", "doc.trade_nox")]),
        [
            "broken.yaml:75:13: target field billno: unknown source field doc.trade_nox: wdt.trade.query has no field 'trade_nox'"
        ]
    );
    assert_eq!(
        broken(KINGDEE, &[("line.spec_no", "line.spec_nox")]),
        [
            "broken.yaml:86:24: target field material_entity[].materialid_id: unknown source field line.spec_nox: \
          wdt.trade.query has no field 'goods_list.spec_nox'"
        ]
    );
    assert_eq!(
        broken(
            KINGDEE,
            &[("maps.unit(line.unit_name)", "maps.units(line.unit_name)")]
        ),
        [
            "broken.yaml:89:18: target field material_entity[].unit_id: unknown value map maps.units; \
          defined: shop_customer, warehouse_stock, material, unit"
        ]
    );
    assert_eq!(
        broken(YONYOU, &[("vars.stock_org", "vars.stock_orgs")]),
        [
            "broken.yaml:135:21: target field orderDetails[].stockOrgId: unknown variable vars.stock_orgs"
        ]
    );
    assert_eq!(
        broken(KINGDEE, &[("date(doc.trade_time)", "date(doc.trade_time")]),
        [
            "broken.yaml:74:15: target field billdate: syntax error: unexpected end of input, expected `,` in `date(doc.trade_time`"
        ]
    );
    assert_eq!(
        broken(
            KINGDEE,
            &[(
                "line.refund_status | string != '5'",
                "line.refund_status | strng != '5'"
            )]
        ),
        [
            "broken.yaml:84:15: target field material_entity[] filter: unknown filter: filter strng is unknown \
          in `line.refund_status | strng != '5'`"
        ]
    );
    assert_eq!(
        broken(
            YONYOU,
            &[(
                "money: \"{{ div(calc.amount,",
                "money: \"{{ div(calc.amountx,"
            )]
        ),
        [
            "broken.yaml:126:16: target field orderDetails[].(calc money): calc.amountx is not defined before this calc"
        ]
    );
    assert_eq!(
        broken(
            KINGDEE,
            &[(
                "\"{{ date(doc.trade_time) }}\"",
                "\"{{ dte(doc.trade_time) }}\""
            )]
        ),
        [
            "broken.yaml:74:15: target field billdate: unknown name 'dte': use doc.FIELD, line.FIELD, calc.NAME, \
          vars.NAME, maps.NAME(value) or a function (dec, add, sub, mul, div, sum, date, md5)"
        ]
    );
}

#[test]
fn required_target_fields_must_be_mapped() {
    assert_eq!(
        broken(
            YONYOU,
            &[(
                "    payMoney: \"{{ dec(sum(lines.orderDetails, 'oriSum'), 2) }}\"\n",
                ""
            )]
        ),
        [
            "broken.yaml:103:5: target field payMoney is required by /yonbip/sd/voucherorder/singleSave but not mapped"
        ]
    );
    assert_eq!(
        broken(
            YONYOU,
            &[(
                "        taxId: \"{{ maps.tax_code(dec(calc.rate, 2)) }}\"\n",
                ""
            )]
        ),
        [
            "broken.yaml:130:9: target field orderDetails[].taxId is required by /yonbip/sd/voucherorder/singleSave but not mapped"
        ]
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_file_order() {
    let diagnostics = broken(
        KINGDEE,
        &[
            ("doc.trade_no", "doc.trade_nox"),
            ("line.spec_no", "line.spec_nox"),
            ("max_span: 60m", "max_span: 2h"),
            ("maps.shop_customer(doc.shop_no)", "maps.shop(doc.shop_no)"),
            ("env: FERRY_KINGDEE_PROJECT", "env: FERRY_NOT_SET"),
        ],
    );
    assert_eq!(
        diagnostics,
        [
            "broken.yaml:25:15: window.max_span 2h exceeds the 60m that wdt.trade.query allows",
            "broken.yaml:31:5: warning: variable 'project': FERRY_NOT_SET has no value here; a run stops at start until the deployment sets it",
            "broken.yaml:75:13: target field billno: unknown source field doc.trade_nox: wdt.trade.query has no field 'trade_nox'",
            "broken.yaml:76:20: target field customerid_id: unknown value map maps.shop; defined: shop_customer, warehouse_stock, material, unit",
            "broken.yaml:86:24: target field material_entity[].materialid_id: unknown source field line.spec_nox: \
             wdt.trade.query has no field 'goods_list.spec_nox'",
        ]
    );
}

#[test]
fn unknown_target_fields_are_warnings_not_errors() {
    let text =
        std::fs::read_to_string(workspace().join(format!("schemes/{KINGDEE}.yaml"))).unwrap();
    let text = text.replacen(
        "    billno: ",
        "    remarks: \"{{ doc.buyer_message }}\"\n    billno: ",
        1,
    );
    let scheme = load("warned.yaml", &text).expect("a warning does not refuse the scheme");
    let warnings: Vec<String> = scheme
        .warnings
        .iter()
        .map(|w| w.display("warned.yaml"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warned.yaml:75:14: warning: target field remarks is not a known field of jdy/sal/sal_order_save"
        ]
    );
}
