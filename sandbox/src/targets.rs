//! The Kingdee and Yonyou stand-ins' books: every bill they hold, every request they received, and
//! the rules that make real integrations duplicate or lose bills: Kingdee refuses a known `billno`
//! without `id`; Yonyou answers a repeated `resubmitCheckKey` with the first save.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{Value, json};

/// A sales order as a target holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Bill {
    /// The target's id.
    pub id: String,
    /// Kingdee `billno`; Yonyou `code`.
    pub number: String,
    /// The body last saved (Kingdee: the bill; Yonyou: the `data` object).
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
    /// The answer never reached the client (commit-then-lost fault).
    pub answer_lost: bool,
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

/// The Kingdee account book.
#[derive(Debug, Default)]
pub struct KingdeeBook {
    bills: Vec<Bill>,
    by_number: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    next: u64,
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

impl KingdeeBook {
    /// Saves a V1 sales order as 金蝶云星辰 does.
    pub(crate) fn save(&mut self, body: &Value, refuse_rate: f64) -> SaveResult {
        let refuse = |message: String| SaveResult::Refused {
            code: "PARAM_ERROR".into(),
            message,
        };
        let billdate = text(body, "billdate");
        if billdate.len() != 10 || jiff::civil::Date::strptime("%Y-%m-%d", billdate).is_err() {
            return refuse(format!("单据日期[billdate]格式错误: '{billdate}'"));
        }
        if text(body, "customerid_id").is_empty() {
            return refuse("客户[customerid_id]不能为空".into());
        }
        let lines = body.get("material_entity").and_then(Value::as_array);
        let Some(lines) = lines.filter(|l| !l.is_empty()) else {
            return refuse("商品分录[material_entity]不能为空".into());
        };
        for (n, line) in lines.iter().enumerate() {
            if text(line, "materialid_id").is_empty() {
                return refuse(format!("第{}行: 商品[materialid_id]不能为空", n + 1));
            }
            if !line.get("qty").is_some_and(is_positive_number) {
                return refuse(format!("第{}行: 数量[qty]必须大于0", n + 1));
            }
        }
        let number = text(body, "billno").to_owned();
        if refused_by_rate(&number, refuse_rate) {
            return SaveResult::Refused {
                code: "BIZ_ERROR".into(),
                message: format!("客户[{}]已冻结, 不能开单", text(body, "customerid_id")),
            };
        }
        let id = text(body, "id").to_owned();
        if !id.is_empty() {
            let Some(&at) = self.by_id.get(&id) else {
                return refuse(format!("单据[id={id}]不存在"));
            };
            let bill = &mut self.bills[at];
            if !number.is_empty() && number != bill.number {
                if self.by_number.contains_key(&number) {
                    return SaveResult::Refused {
                        code: ferry_common::connector::kingdee::wire::DUPLICATE_BILLNO.into(),
                        message: format!("单据编号重复: {number}"),
                    };
                }
                self.by_number.remove(&bill.number);
                bill.number = number.clone();
                self.by_number.insert(number.clone(), at);
            }
            bill.body = body.clone();
            bill.writes += 1;
            return SaveResult::Written { id, created: false };
        }
        if !number.is_empty() && self.by_number.contains_key(&number) {
            return SaveResult::Refused {
                code: ferry_common::connector::kingdee::wire::DUPLICATE_BILLNO.into(),
                message: format!("单据编号重复: {number}"),
            };
        }
        self.next += 1;
        let id = format!("{}", 1_700_000_000_000_000_000u64 + self.next);
        let number = if number.is_empty() {
            format!("XSDD{:08}", self.next)
        } else {
            number
        };
        let mut stored = body.clone();
        stored["id"] = Value::String(id.clone());
        self.by_number.insert(number.clone(), self.bills.len());
        self.by_id.insert(id.clone(), self.bills.len());
        self.bills.push(Bill {
            id: id.clone(),
            number: number.clone(),
            body: stored,
            writes: 1,
        });
        SaveResult::Written { id, created: true }
    }

    /// Bills whose number contains `search` (the list API's fuzzy match).
    pub(crate) fn search(&self, search: &str) -> Vec<&Bill> {
        self.bills
            .iter()
            .filter(|bill| bill.number.contains(search))
            .collect()
    }

    /// Every bill.
    pub fn bills(&self) -> &[Bill] {
        &self.bills
    }

    /// Deletes the bill numbered `number`, as a user can in 金蝶云星辰's own screens; `false` if
    /// there is none.
    pub(crate) fn delete(&mut self, number: &str) -> bool {
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

/// The Yonyou tenant's sales orders and its `resubmitCheckKey` register.
#[derive(Debug, Default)]
pub struct YonyouBook {
    orders: Vec<Bill>,
    by_id: HashMap<String, usize>,
    /// Key → (the first success's data, when).
    keys: HashMap<String, (Value, Instant)>,
    next: u64,
}

impl YonyouBook {
    /// Saves `{"data": {...}}` as `singleSave` does.
    pub(crate) fn save(
        &mut self,
        body: &Value,
        required: &[String],
        refuse_rate: f64,
        key_window: Duration,
    ) -> SaveResult {
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
        if !key.is_empty()
            && let Some((first, at)) = self.keys.get(&key)
        {
            return SaveResult::Repeat {
                first: first.clone(),
                expired: at.elapsed() > key_window,
            };
        }
        let lines = data.get("orderDetails").and_then(Value::as_array);
        for field in required {
            if let Some(line_field) = field.strip_prefix("orderDetails.") {
                for (n, line) in lines.into_iter().flatten().enumerate() {
                    if is_blank(line.get(line_field)) {
                        return business(format!("订单行{}: {line_field}不能为空", n + 1));
                    }
                }
            } else if is_blank(data.get(field.as_str())) {
                return business(format!("{field}不能为空"));
            }
        }
        let status = text(data, "_status");
        if status != "Insert" && status != "Update" {
            return param(format!("_status必须是Insert或Update: '{status}'"));
        }
        let pay: Option<rust_decimal::Decimal> = decimal(data.get("payMoney"));
        let sum: Option<rust_decimal::Decimal> = lines
            .into_iter()
            .flatten()
            .map(|line| decimal(line.get("oriSum")))
            .sum();
        if pay.is_none() || pay != sum {
            return business(format!(
                "表头含税金额payMoney({})与表体含税金额合计({})不一致",
                pay.map(|d| d.to_string()).unwrap_or_default(),
                sum.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        if refused_by_rate(&key, refuse_rate) {
            return business(format!("客户[{}]信用额度不足", text(data, "agentId")));
        }
        let (id, created) = if status == "Update" {
            let id = text(data, "id").to_owned();
            let Some(&at) = self.by_id.get(&id) else {
                return business(format!("单据[id={id}]不存在或已删除"));
            };
            let order = &mut self.orders[at];
            order.body = data.clone();
            order.writes += 1;
            (id, false)
        } else {
            self.next += 1;
            let id = format!("{}", 2_100_000_000_000_000u64 + self.next);
            self.by_id.insert(id.clone(), self.orders.len());
            self.orders.push(Bill {
                id: id.clone(),
                number: format!("SO{:010}", self.next),
                body: data.clone(),
                writes: 1,
            });
            (id, true)
        };
        if !key.is_empty() {
            self.keys.insert(key, (self.answer_of(&id), Instant::now()));
        }
        SaveResult::Written { id, created }
    }

    /// The order `id` as the save answer returns it: the saved data with its id and code.
    pub(crate) fn answer_of(&self, id: &str) -> Value {
        self.by_id
            .get(id)
            .map(|&at| {
                let order = &self.orders[at];
                let mut data = order.body.clone();
                data["id"] = json!(order.id);
                data["code"] = json!(order.number);
                data
            })
            .unwrap_or(Value::Null)
    }

    /// Every order.
    pub fn orders(&self) -> &[Bill] {
        &self.orders
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
            "material_entity": [{ "materialid_id": "M1", "qty": 1 }],
        })
    }

    fn written(result: SaveResult) -> (String, bool) {
        match result {
            SaveResult::Written { id, created } => (id, created),
            _ => panic!("not written"),
        }
    }

    #[test]
    fn a_deleted_bill_is_gone_and_the_bills_after_it_stay_addressable() {
        let mut book = KingdeeBook::default();
        let ids: Vec<String> = ["A", "B", "C"]
            .iter()
            .map(|n| written(book.save(&order(n), 0.0)).0)
            .collect();
        assert!(book.delete("B"));
        assert!(!book.delete("B"));
        assert!(book.search("B").is_empty());
        // C moved down a place: an update by its id and a clash with its number still find it.
        let mut update = order("C");
        update["id"] = json!(ids[2]);
        update["remark"] = json!("edited");
        assert_eq!(written(book.save(&update, 0.0)), (ids[2].clone(), false));
        assert_eq!(book.search("C")[0].body["remark"], "edited");
        assert!(matches!(
            book.save(&order("C"), 0.0),
            SaveResult::Refused { .. }
        ));
        // The deleted bill's number and id are free again.
        assert!(written(book.save(&order("B"), 0.0)).1);
        let mut gone = order("X");
        gone["id"] = json!(ids[1]);
        assert!(matches!(book.save(&gone, 0.0), SaveResult::Refused { .. }));
        assert_eq!(book.bills().len(), 3);
    }
}
