//! The Kingdee and Yonyou stand-ins' books: every bill they hold, line by line with the ids they
//! gave, every request they received, and the rules that make real integrations duplicate, lose or
//! garble bills: Kingdee refuses a known `billno` without `id` and appends an entry that carries no
//! entry id; Yonyou answers a repeated `resubmitCheckKey` with the first success, addresses lines
//! by id and refuses to change an audited order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::unknowns::{DuplicateRefusal, LeftOutLines};

/// A sales order as a target holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Bill {
    /// The target's id.
    pub id: String,
    /// Kingdee `billno`; Yonyou `code`.
    pub number: String,
    /// The bill as the target keeps it (Kingdee: the bill; Yonyou: the `data` object): the
    /// header fields last saved, and its lines, each with the id the target gave it.
    pub body: Value,
    /// Saves that created or changed it (1 = created, never updated).
    pub writes: u32,
}

/// One request a target received and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Reception {
    /// `kingdee` or `yonyou`.
    pub service: &'static str,
    /// The body received.
    pub body: Value,
    /// `created`, `updated`, `repeat` or the refusal's message.
    pub outcome: String,
    /// The id the answer named, if any.
    pub id: Option<String>,
    /// The answer never reached the client (commit-then-lost, commit-then-5xx, commit-then-hang).
    pub answer_lost: bool,
    /// Refused by a business rule that refuses this content every time (not a malformed request,
    /// a duplicate number or a wrong line id: those a right client never sends).
    pub for_good: bool,
    /// When the target applied (or refused) it: the receipt a latency is measured to.
    pub at: jiff::Timestamp,
}

/// What a save did.
#[derive(Debug)]
pub(crate) enum SaveResult {
    /// Created or updated a bill: its id, and whether it is new.
    Written { id: String, created: bool },
    /// Yonyou: a repeated key; the first answer's data, and whether the hour has passed.
    Repeat { first: Value, expired: bool },
    /// Refused: code and message.
    Refused { code: String, message: String },
    /// Refused by a business rule that refuses this document every time (a blocked customer, an
    /// audited order): code and message.
    Rejected { code: String, message: String },
}

/// Deterministic "this customer is blocked" refusals: the same document is refused every time.
fn refused_by_rate(key: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let digest = Md5::digest(key.as_bytes());
    let n = u16::from_be_bytes([digest[0], digest[1]]) as f64 / 65_536.0;
    n < rate
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn is_positive_number(value: &Value) -> bool {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed.is_some_and(|n| n > 0.0)
}

/// A target's bills, found by number and by id.
#[derive(Debug, Default)]
struct Ledger {
    bills: Vec<Bill>,
    by_number: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    /// The last id handed out (bills and lines share the sequence).
    next: u64,
}

impl Ledger {
    fn new_id(&mut self, base: u64) -> String {
        self.next += 1;
        (base + self.next).to_string()
    }

    fn insert(&mut self, bill: Bill) {
        if !bill.number.is_empty() {
            self.by_number.insert(bill.number.clone(), self.bills.len());
        }
        self.by_id.insert(bill.id.clone(), self.bills.len());
        self.bills.push(bill);
    }

    fn renumber(&mut self, at: usize, number: &str) {
        let bill = &mut self.bills[at];
        if bill.number != number {
            self.by_number.remove(&bill.number);
            bill.number = number.to_owned();
            self.by_number.insert(number.to_owned(), at);
        }
    }

    fn delete(&mut self, number: &str) -> bool {
        let Some(index) = self.by_number.remove(number) else {
            return false;
        };
        let bill = self.bills.remove(index);
        self.by_id.remove(&bill.id);
        // The bills after it moved one place down.
        for at in self.by_id.values_mut().chain(self.by_number.values_mut()) {
            if *at > index {
                *at -= 1;
            }
        }
        true
    }
}

/// The header of `body` (every field but the line list) with `lines` as its line list.
fn with_lines(body: &Value, list: &str, lines: Vec<Value>) -> Value {
    let mut header: Map<String, Value> = body
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != list)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    header.insert(list.to_owned(), Value::Array(lines));
    Value::Object(header)
}

/// Applies the lines of a modify to a bill's lines. `id_of` reads the id a request line addresses
/// (`None`: a new line), `deleting` whether it asks to delete its line. Lines of the bill the request
/// does not mention are kept or dropped as `left_out` says. New lines get ids from `new_id`.
fn merge_lines(
    existing: &[Value],
    requested: &[Value],
    left_out: LeftOutLines,
    id_of: impl Fn(&Value) -> Option<String>,
    deleting: impl Fn(&Value) -> bool,
    mut clean: impl FnMut(&Value, &str) -> Value,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<Value>, String> {
    let ids: Vec<String> = existing.iter().map(|l| text(l, "id").to_owned()).collect();
    let mut mentioned: HashMap<String, Option<Value>> = HashMap::new();
    let mut appended = Vec::new();
    for (n, line) in requested.iter().enumerate() {
        match id_of(line) {
            Some(id) => {
                if !ids.contains(&id) {
                    return Err(format!("第{}行: 分录id[{id}]不存在", n + 1));
                }
                if mentioned.contains_key(&id) {
                    return Err(format!("第{}行: 分录id[{id}]重复", n + 1));
                }
                let kept = (!deleting(line)).then(|| clean(line, &id));
                mentioned.insert(id, kept);
            }
            None => {
                let id = new_id();
                appended.push(clean(line, &id));
            }
        }
    }
    let mut lines = Vec::with_capacity(existing.len() + appended.len());
    for (line, id) in existing.iter().zip(&ids) {
        match mentioned.remove(id) {
            Some(Some(updated)) => lines.push(updated),
            Some(None) => {}
            None if left_out == LeftOutLines::Kept => lines.push(line.clone()),
            None => {}
        }
    }
    lines.extend(appended);
    Ok(lines)
}

/// The Kingdee account book.
#[derive(Debug, Default)]
pub struct KingdeeBook {
    ledger: Ledger,
}

/// The field names of one generation of Kingdee's sales-order save: V1 runs names together
/// (`billdate`, `customerid_id`), V2 is snake case (`bill_date`, `customer_id`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KingdeeFields {
    /// The bill date.
    pub(crate) date: &'static str,
    /// The customer.
    pub(crate) customer: &'static str,
    /// The bill number.
    pub(crate) number: &'static str,
    /// A line's material.
    pub(crate) material: &'static str,
    /// Line fields the generation requires beyond material and quantity.
    pub(crate) line_required: &'static [&'static str],
}

/// `jdy/sal/sal_order_save`.
pub(crate) const KINGDEE_V1: KingdeeFields = KingdeeFields {
    date: "billdate",
    customer: "customerid_id",
    number: "billno",
    material: "materialid_id",
    line_required: &[],
};

/// `jdy/v2/scm/sal_order` (`SalOrderSaveReq`: `unit_id` and `is_free` are required per line).
pub(crate) const KINGDEE_V2: KingdeeFields = KingdeeFields {
    date: "bill_date",
    customer: "customer_id",
    number: "bill_no",
    material: "material_id",
    line_required: &["unit_id", "is_free"],
};

/// Kingdee's id sequence starts here (ids are 19-digit numbers as text).
const KINGDEE_IDS: u64 = 1_700_000_000_000_000_000;

impl KingdeeBook {
    /// Saves a V1 sales order as 金蝶云星辰 does: a create, or with `id` a modify whose entries with
    /// an `id` change those entries, entries without one are appended, and entries left out are
    /// kept or deleted as `left_out` says.
    pub(crate) fn save(
        &mut self,
        body: &Value,
        fields: KingdeeFields,
        refuse_rate: f64,
        frozen: &[String],
        left_out: LeftOutLines,
        duplicate: DuplicateRefusal,
    ) -> SaveResult {
        let refuse = |message: String| SaveResult::Refused {
            code: "PARAM_ERROR".into(),
            message,
        };
        let date = text(body, fields.date);
        if date.len() != 10 || jiff::civil::Date::strptime("%Y-%m-%d", date).is_err() {
            return refuse(format!("单据日期[{}]格式错误: '{date}'", fields.date));
        }
        if text(body, fields.customer).is_empty() {
            return refuse(format!("客户[{}]不能为空", fields.customer));
        }
        let lines = body.get("material_entity").and_then(Value::as_array);
        let Some(lines) = lines.filter(|l| !l.is_empty()) else {
            return refuse("商品分录[material_entity]不能为空".into());
        };
        for (n, line) in lines.iter().enumerate() {
            if text(line, fields.material).is_empty() {
                return refuse(format!("第{}行: 商品[{}]不能为空", n + 1, fields.material));
            }
            if !line.get("qty").is_some_and(is_positive_number) {
                return refuse(format!("第{}行: 数量[qty]必须大于0", n + 1));
            }
            for required in fields.line_required {
                if line.get(*required).is_none_or(Value::is_null) {
                    return refuse(format!("第{}行: [{required}]不能为空", n + 1));
                }
            }
        }
        let number = text(body, fields.number).to_owned();
        if refused_by_rate(&number, refuse_rate)
            || frozen.iter().any(|c| c == text(body, fields.customer))
        {
            return SaveResult::Rejected {
                code: "BIZ_ERROR".into(),
                message: format!("客户[{}]已冻结, 不能开单", text(body, fields.customer)),
            };
        }
        let taken = |ledger: &Ledger, number: &str| -> Option<SaveResult> {
            ledger
                .by_number
                .contains_key(number)
                .then(|| match duplicate {
                    DuplicateRefusal::CombinedValue => SaveResult::Refused {
                        code: "2011".into(),
                        message: format!("单据编号[{number}]: 组合值与其他表单重复"),
                    },
                    DuplicateRefusal::Other => SaveResult::Refused {
                        code: "BILL_SAVE_FAIL".into(),
                        message: format!("保存失败: 编号{number}已被使用"),
                    },
                })
        };
        let id = text(body, "id").to_owned();
        if !id.is_empty() {
            let Some(&at) = self.ledger.by_id.get(&id) else {
                return refuse(format!("单据[id={id}]不存在"));
            };
            if !number.is_empty() && number != self.ledger.bills[at].number {
                if let Some(refusal) = taken(&self.ledger, &number) {
                    return refusal;
                }
                self.ledger.renumber(at, &number);
            }
            let existing = self.ledger.bills[at].body["material_entity"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ledger = &mut self.ledger;
            let mut fresh = 0u64;
            let merged = merge_lines(
                &existing,
                lines,
                left_out,
                |line| {
                    line.get("id")
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .filter(|s| !s.is_empty())
                },
                |_| false,
                |line, id| {
                    let mut line = line.clone();
                    line["id"] = json!(id);
                    line
                },
                || {
                    fresh += 1;
                    format!("new-{fresh}")
                },
            );
            let mut merged = match merged {
                Ok(lines) => lines,
                Err(message) => return refuse(message),
            };
            // New entries get ids of the book's sequence.
            for line in &mut merged {
                if text(line, "id").starts_with("new-") {
                    line["id"] = json!(ledger.new_id(KINGDEE_IDS));
                }
            }
            let bill = &mut ledger.bills[at];
            let mut stored = with_lines(body, "material_entity", merged);
            stored["id"] = json!(id);
            bill.body = stored;
            bill.writes += 1;
            return SaveResult::Written { id, created: false };
        }
        if !number.is_empty()
            && let Some(refusal) = taken(&self.ledger, &number)
        {
            return refusal;
        }
        let id = self.ledger.new_id(KINGDEE_IDS);
        let number = if number.is_empty() {
            format!("XSDD{:08}", self.ledger.next)
        } else {
            number
        };
        let entries: Vec<Value> = lines
            .iter()
            .map(|line| {
                let mut line = line.clone();
                line["id"] = json!(self.ledger.new_id(KINGDEE_IDS));
                line
            })
            .collect();
        let mut stored = with_lines(body, "material_entity", entries);
        stored["id"] = json!(id);
        stored[fields.number] = json!(number);
        self.ledger.insert(Bill {
            id: id.clone(),
            number,
            body: stored,
            writes: 1,
        });
        SaveResult::Written { id, created: true }
    }

    /// The bill numbered exactly `number`.
    pub(crate) fn by_number(&self, number: &str) -> Option<&Bill> {
        self.ledger
            .by_number
            .get(number)
            .map(|&at| &self.ledger.bills[at])
    }

    /// The bill with id `id`.
    pub(crate) fn by_id(&self, id: &str) -> Option<&Bill> {
        self.ledger.by_id.get(id).map(|&at| &self.ledger.bills[at])
    }

    /// Bills whose number contains `search` (the list API's fuzzy match).
    pub(crate) fn search(&self, search: &str) -> Vec<&Bill> {
        self.ledger
            .bills
            .iter()
            .filter(|bill| bill.number.contains(search))
            .collect()
    }

    /// Every bill.
    pub fn bills(&self) -> &[Bill] {
        &self.ledger.bills
    }

    /// Deletes the bill numbered `number`, as a user can in 金蝶云星辰's own screens; `false` if
    /// there is none.
    pub(crate) fn delete(&mut self, number: &str) -> bool {
        self.ledger.delete(number)
    }
}

/// The Yonyou tenant's sales orders and its `resubmitCheckKey` register.
#[derive(Debug, Default)]
pub struct YonyouBook {
    ledger: Ledger,
    /// Key → (the first success's data, when).
    keys: HashMap<String, (Value, Instant)>,
    /// Ids of audited orders: an Update is refused.
    audited: std::collections::HashSet<String>,
}

/// Yonyou's id sequence starts here.
const YONYOU_IDS: u64 = 2_100_000_000_000_000;

/// How a Yonyou save is judged beyond its body.
pub(crate) struct YonyouRules<'a> {
    pub required: &'a [String],
    pub refuse_rate: f64,
    pub key_window: Duration,
    pub left_out: LeftOutLines,
}

impl YonyouBook {
    /// Saves `{"data": {...}}` as `singleSave` does.
    pub(crate) fn save(&mut self, body: &Value, rules: &YonyouRules<'_>) -> SaveResult {
        let param = |message: String| SaveResult::Refused {
            code: ferry_common::connector::yonyou::wire::BAD_PARAMETER.into(),
            message,
        };
        let business = |message: String| SaveResult::Refused {
            code: ferry_common::connector::yonyou::wire::BUSINESS_ERROR.into(),
            message,
        };
        let Some(data) = body.get("data").filter(|d| d.is_object()) else {
            return param("参数错误: 请求体缺少data".into());
        };
        let key = text(data, "resubmitCheckKey").to_owned();
        if key.chars().count() > 32 {
            return param(format!("resubmitCheckKey长度不能超过32: {key}"));
        }
        // Only successes are remembered: a key whose first use was refused is processed afresh.
        if !key.is_empty()
            && let Some((first, at)) = self.keys.get(&key)
        {
            return SaveResult::Repeat {
                first: first.clone(),
                expired: at.elapsed() > rules.key_window,
            };
        }
        let status = text(data, "_status");
        if status != "Insert" && status != "Update" {
            return param(format!("_status必须是Insert或Update: '{status}'"));
        }
        let lines: Vec<Value> = data
            .get("orderDetails")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (n, line) in lines.iter().enumerate() {
            let line_status = text(line, "_status");
            let line_id = text(line, "id");
            match (status, line_status) {
                ("Insert", "Insert") | ("Update", "Insert") if line_id.is_empty() => {}
                ("Insert", "Insert") | ("Update", "Insert") => {
                    return param(format!("订单行{}: 新增行不能指定id", n + 1));
                }
                ("Update", "Update") => {
                    if line_id.is_empty()
                        || text(line, "orderDetailPrices!orderDetailId") != line_id
                    {
                        return param(format!(
                            "订单行{}: 修改行必须传id和orderDetailPrices!orderDetailId",
                            n + 1
                        ));
                    }
                }
                ("Update", "Delete") if !line_id.is_empty() => {}
                _ => {
                    return param(format!(
                        "订单行{}: _status[{line_status}]不适用于{status}",
                        n + 1
                    ));
                }
            }
        }
        for field in rules.required {
            if let Some(line_field) = field.strip_prefix("orderDetails.") {
                for (n, line) in lines.iter().enumerate() {
                    if text(line, "_status") != "Delete" && is_blank(line.get(line_field)) {
                        return business(format!("订单行{}: {line_field}不能为空", n + 1));
                    }
                }
            } else if is_blank(data.get(field.as_str())) {
                return business(format!("{field}不能为空"));
            }
        }
        let code = text(data, "code").to_owned();
        let (id, created, merged) = if status == "Update" {
            let id = text(data, "id").to_owned();
            if code.is_empty() {
                return param("修改时code必传".into());
            }
            if text(data, "orderPrices!orderId") != id {
                return param("修改时orderPrices!orderId必传且与id一致".into());
            }
            let Some(&at) = self.ledger.by_id.get(&id) else {
                return business(format!("单据[id={id}]不存在或已删除"));
            };
            if self.audited.contains(&id) {
                return SaveResult::Rejected {
                    code: ferry_common::connector::yonyou::wire::BUSINESS_ERROR.into(),
                    message: format!("单据[{}]已审核, 不能修改", self.ledger.bills[at].number),
                };
            }
            if code != self.ledger.bills[at].number && self.ledger.by_number.contains_key(&code) {
                return business(format!("单据编号[{code}]已存在"));
            }
            let existing = self.ledger.bills[at].body["orderDetails"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut fresh = 0u64;
            let merged = merge_lines(
                &existing,
                &lines,
                rules.left_out,
                |line| {
                    let id = text(line, "id");
                    (!id.is_empty()).then(|| id.to_owned())
                },
                |line| text(line, "_status") == "Delete",
                stored_line,
                || {
                    fresh += 1;
                    format!("new-{fresh}")
                },
            );
            match merged {
                Ok(merged) => (id, false, merged),
                Err(message) => return param(message),
            }
        } else {
            if !code.is_empty() && self.ledger.by_number.contains_key(&code) {
                return business(format!("单据编号[{code}]已存在"));
            }
            (
                String::new(),
                true,
                lines.iter().map(|l| stored_line(l, "")).collect(),
            )
        };
        let pay: Option<rust_decimal::Decimal> = decimal(data.get("payMoney"));
        let sum: Option<rust_decimal::Decimal> =
            merged.iter().map(|line| decimal(line.get("oriSum"))).sum();
        if pay.is_none() || pay != sum {
            return business(format!(
                "表头含税金额payMoney({})与表体含税金额合计({})不一致",
                pay.map(|d| d.to_string()).unwrap_or_default(),
                sum.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        if refused_by_rate(&key_of_document(data), rules.refuse_rate) {
            return SaveResult::Rejected {
                code: ferry_common::connector::yonyou::wire::BUSINESS_ERROR.into(),
                message: format!("客户[{}]信用额度不足", text(data, "agentId")),
            };
        }
        // Lines new in this save get ids of the tenant's sequence.
        let merged: Vec<Value> = merged
            .into_iter()
            .map(|mut line| {
                let id = text(&line, "id");
                if id.is_empty() || id.starts_with("new-") {
                    let id = self.ledger.new_id(YONYOU_IDS);
                    line["id"] = json!(id);
                }
                line
            })
            .collect();
        let id = if created {
            let id = self.ledger.new_id(YONYOU_IDS);
            let number = if code.is_empty() {
                format!("SO{:010}", self.ledger.next)
            } else {
                code
            };
            let mut stored = with_lines(data, "orderDetails", merged);
            strip_request_fields(&mut stored);
            self.ledger.insert(Bill {
                id: id.clone(),
                number,
                body: stored,
                writes: 1,
            });
            id
        } else {
            let at = self.ledger.by_id[&id];
            self.ledger.renumber(at, &code);
            let mut stored = with_lines(data, "orderDetails", merged);
            strip_request_fields(&mut stored);
            let order = &mut self.ledger.bills[at];
            order.body = stored;
            order.writes += 1;
            id
        };
        if !key.is_empty() {
            self.keys.insert(key, (self.answer_of(&id), Instant::now()));
        }
        SaveResult::Written { id, created }
    }

    /// The order `id` as the save and detail answers give it: the saved data with its id, its code
    /// and each line's id.
    pub(crate) fn answer_of(&self, id: &str) -> Value {
        self.ledger
            .by_id
            .get(id)
            .map(|&at| {
                let order = &self.ledger.bills[at];
                let mut data = order.body.clone();
                data["id"] = json!(order.id);
                data["code"] = json!(order.number);
                data
            })
            .unwrap_or(Value::Null)
    }

    /// The id of the order numbered `code`.
    pub(crate) fn id_of_code(&self, code: &str) -> Option<String> {
        self.ledger
            .by_number
            .get(code)
            .map(|&at| self.ledger.bills[at].id.clone())
    }

    /// Audits the order numbered `code`: from now on an Update of it is refused.
    pub(crate) fn audit(&mut self, code: &str) -> bool {
        match self.id_of_code(code) {
            Some(id) => self.audited.insert(id),
            None => false,
        }
    }

    /// Every order.
    pub fn orders(&self) -> &[Bill] {
        &self.ledger.bills
    }
}

/// The stable key a refusal by rate is decided on: the source document behind the order (its
/// stock-out id rides in each line's `sourceid`-less data, so the code's base is used).
fn key_of_document(data: &Value) -> String {
    let code = text(data, "code");
    code.rsplit_once('-')
        .filter(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .map_or(code, |(base, _)| base)
        .to_owned()
}

/// A request line as the order keeps it: its content and its id, without the request's markers.
fn stored_line(line: &Value, id: &str) -> Value {
    let mut line = line.clone();
    if let Some(map) = line.as_object_mut() {
        map.remove("_status");
        map.remove("orderDetailPrices!orderDetailId");
        if !id.is_empty() {
            map.insert("id".into(), json!(id));
        }
    }
    line
}

/// What an order keeps of a request's header: not the request's markers.
fn strip_request_fields(order: &mut Value) {
    if let Some(map) = order.as_object_mut() {
        for field in ["_status", "resubmitCheckKey", "orderPrices!orderId", "id"] {
            map.remove(field);
        }
    }
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn decimal(value: Option<&Value>) -> Option<rust_decimal::Decimal> {
    match value? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order(number: &str) -> Value {
        json!({
            "billno": number,
            "billdate": "2026-11-22",
            "customerid_id": "C1",
            "material_entity": [{ "materialid_id": "M1", "qty": 1 }, { "materialid_id": "M2", "qty": 2 }],
        })
    }

    fn save(book: &mut KingdeeBook, body: &Value, left_out: LeftOutLines) -> SaveResult {
        book.save(
            body,
            KINGDEE_V1,
            0.0,
            &[],
            left_out,
            DuplicateRefusal::CombinedValue,
        )
    }

    fn written(result: SaveResult) -> (String, bool) {
        match result {
            SaveResult::Written { id, created } => (id, created),
            other => panic!("not written: {other:?}"),
        }
    }

    fn entries(book: &KingdeeBook, id: &str) -> Vec<Value> {
        book.by_id(id).unwrap().body["material_entity"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_deleted_bill_is_gone_and_the_bills_after_it_stay_addressable() {
        let mut book = KingdeeBook::default();
        let kept = LeftOutLines::Deleted;
        let ids: Vec<String> = ["A", "B", "C"]
            .iter()
            .map(|n| written(save(&mut book, &order(n), kept)).0)
            .collect();
        assert!(book.delete("B"));
        assert!(!book.delete("B"));
        assert!(book.search("B").is_empty());
        // C moved down a place: an update by its id and a clash with its number still find it.
        let mut update = order("C");
        update["id"] = json!(ids[2]);
        update["remark"] = json!("edited");
        assert_eq!(
            written(save(&mut book, &update, kept)),
            (ids[2].clone(), false)
        );
        assert_eq!(book.search("C")[0].body["remark"], "edited");
        assert!(matches!(
            save(&mut book, &order("C"), kept),
            SaveResult::Refused { .. }
        ));
        // The deleted bill's number and id are free again.
        assert!(written(save(&mut book, &order("B"), kept)).1);
        let mut gone = order("X");
        gone["id"] = json!(ids[1]);
        assert!(matches!(
            save(&mut book, &gone, kept),
            SaveResult::Refused { .. }
        ));
        assert_eq!(book.bills().len(), 3);
    }

    #[test]
    fn a_modify_addresses_entries_by_id_and_appends_entries_without_one() {
        for left_out in [LeftOutLines::Kept, LeftOutLines::Deleted] {
            let mut book = KingdeeBook::default();
            let (id, _) = written(save(&mut book, &order("A"), left_out));
            let first: Vec<String> = entries(&book, &id)
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            // Only the header id: both entries are appended again (what a naive client does).
            let mut naive = order("A");
            naive["id"] = json!(id);
            written(save(&mut book, &naive, left_out));
            let after = entries(&book, &id).len();
            assert_eq!(after, if left_out == LeftOutLines::Kept { 4 } else { 2 });
            // Entry ids address entries; one left out is kept or dropped by the setting.
            let mut book = KingdeeBook::default();
            let (id, _) = written(save(&mut book, &order("A"), left_out));
            let mut modify = order("A");
            modify["id"] = json!(id);
            modify["material_entity"] = json!([
                { "id": first[0], "materialid_id": "M1", "qty": 5 },
                { "materialid_id": "M3", "qty": 1 },
            ]);
            written(save(&mut book, &modify, left_out));
            let lines = entries(&book, &id);
            let materials: Vec<&str> = lines
                .iter()
                .map(|l| l["materialid_id"].as_str().unwrap())
                .collect();
            match left_out {
                LeftOutLines::Kept => assert_eq!(materials, ["M1", "M2", "M3"]),
                LeftOutLines::Deleted => assert_eq!(materials, ["M1", "M3"]),
            }
            assert_eq!(lines[0]["qty"], 5);
            assert_eq!(lines[0]["id"], json!(first[0]));
            // An entry id of no entry of this bill is refused.
            modify["material_entity"][0]["id"] = json!("42");
            assert!(matches!(
                save(&mut book, &modify, left_out),
                SaveResult::Refused { .. }
            ));
        }
    }
}

/// What the sandbox plays of one target connector of Ferry's registry: the document kind its
/// shipped scheme reads, its save endpoint (where faults are scripted), where a save body keeps
/// its header, and its bills.
#[derive(Clone, Copy)]
pub struct TargetPlay {
    /// The connector's name in the registry (`kingdee`).
    pub connector: &'static str,
    /// The source documents its shipped scheme reads.
    pub kind: crate::Kind,
    /// Its save endpoint.
    pub save: crate::Endpoint,
    /// The JSON pointer of a save body's header (`""`: the body is the header).
    pub header: &'static str,
    /// The bills it holds.
    pub bills: fn(&crate::Sandbox) -> Vec<Bill>,
    /// Its per-minute limit of target calls under `limits`.
    pub limit: fn(&crate::RateLimits) -> u32,
}

/// Every target connector the sandbox speaks: a registered connector missing here fails the
/// registry test (tests/it/registry.rs).
pub const TARGET_PLAYS: &[TargetPlay] = &[
    TargetPlay {
        connector: "kingdee",
        kind: crate::Kind::Order,
        save: crate::Endpoint::KingdeeSave,
        header: "",
        bills: crate::Sandbox::kingdee_bills,
        limit: |limits| limits.kingdee,
    },
    TargetPlay {
        connector: "yonyou",
        kind: crate::Kind::Stockout,
        save: crate::Endpoint::YonyouSave,
        header: "/data",
        bills: crate::Sandbox::yonyou_orders,
        limit: |limits| limits.yonyou,
    },
];

/// What the sandbox plays of `connector`, if it speaks it.
pub fn target_play(connector: &str) -> Option<&'static TargetPlay> {
    TARGET_PLAYS.iter().find(|play| play.connector == connector)
}
