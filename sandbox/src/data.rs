//! The sandbox's data set: deterministic, seeded WDT orders and sales stock-outs with realistic Chinese
//! content. Document `i` depends only on (seed, i), so any size from 10 to 1,000,000 can be generated
//! in any order. Numbers come as WDT sends them: mostly strings ("12.5000"), sometimes JSON numbers.

use serde_json::{Map, Value, json};

/// Shops: (shop_no, shop_name, platform_id). The seed schemes map every one of them.
pub const SHOPS: &[(&str, &str, i64)] = &[
    ("tmall-001", "天猫旗舰店", 1),
    ("jd-001", "京东自营专卖店", 3),
    ("pdd-001", "拼多多官方店", 32),
    ("douyin-001", "抖音小店", 69),
    ("wxshop-001", "微信小程序商城", 0),
];

/// Warehouses: (warehouse_no, warehouse_name).
pub const WAREHOUSES: &[(&str, &str)] = &[
    ("WH-BJ01", "北京顺义仓"),
    ("WH-SH01", "上海青浦仓"),
    ("WH-GZ01", "广州白云仓"),
];

/// Goods: (goods_no, goods_name, spec_name, unit, price in fen).
const GOODS: &[(&str, &str, &str, &str, i64)] = &[
    ("G1001", "有机纯牛奶", "250ml*12盒", "箱", 6990),
    ("G1002", "手工红糖", "500g", "袋", 2580),
    ("G1003", "西湖龙井茶", "特级 100g", "盒", 16800),
    ("G1004", "五常大米", "5kg", "袋", 8990),
    ("G1005", "纯棉毛巾", "三条装", "套", 3990),
    ("G1006", "保温杯", "316不锈钢 500ml", "个", 12900),
    ("G1007", "竹纤维抽纸", "24包", "件", 4590),
    ("G1008", "坚果礼盒", "1.2kg", "盒", 15900),
    ("G1009", "洗衣凝珠", "52颗", "盒", 5990),
    ("G1010", "陶瓷餐具套装", "18件", "套", 29900),
    ("G1011", "枸杞原浆", "30ml*10瓶", "盒", 19800),
    ("G1012", "蚕丝被", "200*230cm", "件", 89900),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("北京", "北京市", "朝阳区"),
    ("上海", "上海市", "浦东新区"),
    ("广东省", "广州市", "天河区"),
    ("浙江省", "杭州市", "西湖区"),
    ("四川省", "成都市", "武侯区"),
    ("江苏省", "南京市", "鼓楼区"),
    ("湖北省", "武汉市", "洪山区"),
];
const STREETS: &[&str] = &[
    "建国路",
    "人民路",
    "解放大道",
    "中山路",
    "文一西路",
    "天府大道",
    "长江路",
];
const MESSAGES: &[&str] = &[
    "",
    "",
    "",
    "请尽快发货",
    "送人的,不要放发票",
    "周末送货",
    "包装结实一点,谢谢",
];
const LOGISTICS: &[&str] = &["顺丰速运", "中通快递", "圆通速递", "京东物流", "韵达快递"];

/// Makes the data set: the same seed always gives the same documents.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    /// Base time of the data set: documents spread over the 30 days after it.
    base: jiff::civil::DateTime,
}

fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}00", fen.abs() / 100, fen.abs() % 100)
}

/// Sends a number the way WDT sometimes does: as a JSON number instead of a string.
fn number_or_string(rng: &mut fastrand::Rng, text: String) -> Value {
    if rng.u8(0..10) == 0 {
        text.parse::<f64>()
            .map(Value::from)
            .unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    }
}

impl Generator {
    /// A generator for `seed`, with documents from 2026-11-01 on.
    pub fn new(seed: u64) -> Self {
        Generator {
            seed,
            base: jiff::civil::date(2026, 11, 1).at(0, 0, 0, 0),
        }
    }

    /// A generator for `seed` whose documents start at `base` (Beijing time).
    pub fn with_base(seed: u64, base: jiff::civil::DateTime) -> Self {
        Generator { seed, base }
    }

    /// The base time documents start from.
    pub fn base(&self) -> jiff::civil::DateTime {
        self.base
    }

    /// Seconds after the base at which order `index` was last modified: the same value
    /// [`Generator::order`] writes, without building the order.
    pub fn order_modified_offset(&self, index: u64) -> i64 {
        let mut rng = self.rng(1, index);
        // The same draws, in the same order, as `order`.
        rng.usize(0..SHOPS.len());
        rng.usize(0..WAREHOUSES.len());
        let created_at = (index as i64 * 7) % (30 * 86_400) + rng.i64(0..600);
        created_at + rng.i64(0..7200)
    }

    /// Seconds after the base at which the stock-out of order `index` shipped (its `consign_time`
    /// and `modified`), without building it.
    pub fn stockout_shipped_offset(&self, index: u64) -> i64 {
        self.order_modified_offset(index) + self.rng(2, index).i64(600..86_400)
    }

    /// The largest offset any of the first `count` documents can have: the data set's span.
    pub fn span(count: u64) -> i64 {
        let spread = (count.saturating_sub(1) as i64 * 7).min(30 * 86_400 - 1);
        spread + 600 + 7200 + 86_400
    }

    fn rng(&self, kind: u64, index: u64) -> fastrand::Rng {
        // SplitMix-style mixing so neighbouring indexes give unrelated streams.
        let mut z = self.seed
            ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 30)).wrapping_mul(0x94D0_49BB_1331_11EB);
        fastrand::Rng::with_seed(z ^ (z >> 31))
    }

    fn time(&self, seconds: i64) -> String {
        let t = self
            .base
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .expect("time in range");
        ferry_common::time::format_source(t)
    }

    fn lines_count(rng: &mut fastrand::Rng, index: u64) -> usize {
        // One order in a thousand is a wholesale order of 300 lines.
        if index % 1000 == 999 {
            return 300;
        }
        // 1–8 lines, most around 4–5.
        [1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7, 8][rng.usize(0..14)]
    }

    /// Order `index` as `wdt.trade.query` returns it.
    pub fn order(&self, index: u64) -> Value {
        let mut rng = self.rng(1, index);
        let (shop_no, shop_name, platform_id) = SHOPS[rng.usize(0..SHOPS.len())];
        let (warehouse_no, _) = WAREHOUSES[rng.usize(0..WAREHOUSES.len())];
        let trade_id = 100_000 + index;
        let created_at = (index as i64 * 7) % (30 * 86_400) + rng.i64(0..600);
        let modified_at = created_at + rng.i64(0..7200);
        let src_tid = format!(
            "{}{:012}",
            3_000_000 + platform_id * 1000,
            index * 7919 % 1_000_000_000_000
        );
        let trade_no = format!(
            "JY{}{:06}",
            self.time(created_at)
                .get(..10)
                .unwrap_or_default()
                .replace('-', ""),
            index % 1_000_000
        );
        let name = format!(
            "{}{}",
            SURNAMES[rng.usize(0..SURNAMES.len())],
            GIVEN[rng.usize(0..GIVEN.len())]
        );
        let (province, city, district) = PLACES[rng.usize(0..PLACES.len())];
        let address = format!(
            "{}{}号{}栋{}室",
            STREETS[rng.usize(0..STREETS.len())],
            rng.u32(1..999),
            rng.u32(1..30),
            rng.u32(101..2999)
        );
        let line_count = Self::lines_count(&mut rng, index);
        // Refund a line of one multi-line order in twenty (a one-line order refunded whole is not sold).
        let refunded = line_count > 1 && rng.u8(0..20) == 0;
        let mut lines = Vec::with_capacity(line_count);
        let mut goods_amount = 0i64;
        let mut suite_left = 0;
        for n in 0..line_count {
            let (goods_no, goods_name, spec_name, unit, price) = GOODS[rng.usize(0..GOODS.len())];
            let gift = n > 0 && rng.u8(0..8) == 0;
            let qty = if line_count == 300 {
                rng.i64(10..200)
            } else {
                rng.i64(1..4)
            };
            let discount = if gift {
                price * qty
            } else {
                price * qty * rng.i64(0..15) / 100
            };
            let share_amount = price * qty - discount;
            goods_amount += price * qty;
            if suite_left == 0 && rng.u8(0..10) == 0 {
                suite_left = 2;
            }
            let (suite_no, suite_name) = if suite_left > 0 {
                suite_left -= 1;
                ("TZ-2026-08", "年货礼包组合装")
            } else {
                ("", "")
            };
            let line_refunded = refunded && n == 0;
            let spec_no = format!("{goods_no}-{:02}", rng.u8(1..4));
            let mut line = json!({
                "rec_id": (trade_id * 1000 + n as u64).to_string(),
                "src_oid": format!("{src_tid}-{n}"),
                "gift_type": if gift { "1" } else { "0" },
                "refund_status": if line_refunded { "5" } else { "0" },
                "num": number_or_string(&mut rng, format!("{qty}.0000")),
                "price": money(price),
                "refund_num": format!("{}.0000", if line_refunded { qty } else { 0 }),
                "share_price": money(if qty > 0 { share_amount / qty } else { 0 }),
                "share_amount": number_or_string(&mut rng, money(share_amount)),
                "goods_name": goods_name,
                "spec_name": spec_name,
                "spec_no": spec_no,
                "tax_rate": "0.1300",
                "unit_name": unit,
            });
            if !suite_no.is_empty() {
                line["suite_no"] = json!(suite_no);
                line["suite_name"] = json!(suite_name);
            }
            lines.push(line);
        }
        let post = [0, 0, 800, 1200][rng.usize(0..4)];
        let mut order = Map::new();
        for (key, value) in [
            ("trade_id", json!(trade_id.to_string())),
            ("trade_no", json!(trade_no)),
            ("platform_id", json!(platform_id.to_string())),
            ("shop_no", json!(shop_no)),
            ("shop_name", json!(shop_name)),
            ("warehouse_no", json!(warehouse_no)),
            ("src_tids", json!(src_tid)),
            ("trade_status", json!("110")),
            ("trade_type", json!("1")),
            ("refund_status", json!(if refunded { "1" } else { "0" })),
            ("trade_time", json!(self.time(created_at))),
            ("customer_name", json!(name)),
            (
                "buyer_nick",
                json!(format!(
                    "{}***{}",
                    name.chars().next().unwrap_or('*'),
                    rng.u32(10..99)
                )),
            ),
            ("receiver_name", json!(name)),
            ("receiver_province", json!(province)),
            ("receiver_city", json!(city)),
            ("receiver_district", json!(district)),
            ("receiver_address", json!(address)),
            (
                "receiver_mobile",
                json!(format!("1{}****{:04}", rng.u32(30..99), rng.u32(0..9999))),
            ),
            (
                "logistics_name",
                json!(LOGISTICS[rng.usize(0..LOGISTICS.len())]),
            ),
            (
                "buyer_message",
                json!(MESSAGES[rng.usize(0..MESSAGES.len())]),
            ),
            ("goods_type_count", json!(line_count.to_string())),
            ("goods_count", json!(format!("{}.0000", line_count))),
            ("goods_amount", json!(money(goods_amount))),
            ("post_amount", json!(money(post))),
            ("receivable", json!(money(goods_amount + post))),
            ("paid", json!(money(goods_amount + post))),
            ("currency", json!("CNY")),
            ("modified", json!(self.time(modified_at))),
            ("created", json!(self.time(created_at))),
            ("goods_list", Value::Array(lines)),
        ] {
            order.insert(key.to_owned(), value);
        }
        Value::Object(order)
    }

    /// The sales stock-out of order `index`, as `wdt.stockout.order.query.trade` returns it.
    pub fn stockout(&self, index: u64) -> Value {
        let order = self.order(index);
        let mut rng = self.rng(2, index);
        let stockout_id = 500_000 + index;
        let modified = order["modified"].as_str().unwrap_or_default();
        let shipped = self.parse(modified) + rng.i64(600..86_400);
        let details: Vec<Value> = order["goods_list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|line| line["refund_status"] != "5")
            .enumerate()
            .map(|(n, line)| {
                json!({
                    "rec_id": (stockout_id * 1000 + n as u64).to_string(),
                    "stockout_id": stockout_id.to_string(),
                    "spec_no": line["spec_no"],
                    "goods_count": line["num"],
                    "sell_price": line["price"],
                    "goods_type": "1",
                    "gift_type": line["gift_type"],
                    "goods_name": line["goods_name"],
                    "spec_name": line["spec_name"],
                    "spec_code": "",
                    "suite_no": line["suite_no"],
                    "total_amount": line["share_amount"],
                    "refund_status": "0",
                    "market_price": line["price"],
                    "share_amount": line["share_amount"],
                    "tax_rate": if n % 7 == 6 { json!("0.0900") } else { line["tax_rate"].clone() },
                    "unit_name": line["unit_name"],
                    "num": line["num"],
                    "price": line["share_price"],
                    "batch_no": if n % 5 == 4 { json!(format!("B{}", rng.u32(20_260_000..20_269_999))) } else { json!("") },
                    "remark": "",
                    "src_oid": line["src_oid"],
                    "src_tid": order["src_tids"],
                })
            })
            .collect();
        let (warehouse_no, warehouse_name) = WAREHOUSES
            .iter()
            .find(|(no, _)| order["warehouse_no"] == *no)
            .copied()
            .unwrap_or(WAREHOUSES[0]);
        json!({
            "stockout_id": stockout_id.to_string(),
            "order_no": format!("CK{}{:06}", self.time(shipped).get(..10).unwrap_or_default().replace('-', ""), index % 1_000_000),
            "src_order_no": order["trade_no"],
            "src_tids": order["src_tids"],
            "trade_no": order["trade_no"],
            "trade_id": order["trade_id"],
            "warehouse_no": warehouse_no,
            "warehouse_name": warehouse_name,
            "shop_no": order["shop_no"],
            "shop_name": order["shop_name"],
            "platform_id": order["platform_id"],
            "status": "110",
            "trade_status": "110",
            "order_type": "1",
            "order_type_name": "销售出库",
            "consign_time": self.time(shipped),
            "trade_time": order["trade_time"],
            "receiver_name": order["receiver_name"],
            "receiver_province": order["receiver_province"],
            "receiver_city": order["receiver_city"],
            "receiver_district": order["receiver_district"],
            "receiver_address": order["receiver_address"],
            "receiver_mobile": order["receiver_mobile"],
            "logistics_name": order["logistics_name"],
            "logistics_no": format!("SF{}", 1_300_000_000_000u64 + index),
            "goods_count": order["goods_count"],
            "goods_total_amount": order["goods_amount"],
            "post_amount": order["post_amount"],
            "buyer_message": order["buyer_message"],
            "currency": "CNY",
            "created": self.time(shipped - 300),
            "modified": self.time(shipped),
            "details_list": details,
        })
    }
}

impl Generator {
    /// Seconds since the base time of a `YYYY-MM-DD HH:MM:SS` time.
    fn parse(&self, text: &str) -> i64 {
        jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S", text)
            .and_then(|t| t.to_datetime())
            .map(|t| self.base.duration_until(t).as_secs())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_and_varied() {
        let a = Generator::new(7);
        let b = Generator::new(7);
        assert_eq!(a.order(42), b.order(42));
        assert_ne!(a.order(42), a.order(43));
        assert_ne!(Generator::new(8).order(42), a.order(42));
        assert_eq!(a.order(999)["goods_list"].as_array().unwrap().len(), 300);
        let gifts = (0..200)
            .flat_map(|i| a.order(i)["goods_list"].as_array().unwrap().clone())
            .filter(|l| l["gift_type"] == "1")
            .count();
        assert!(gifts > 10, "expected gifts in 200 orders, found {gifts}");
        for i in [0, 42, 999, 5000] {
            let offset = a.order_modified_offset(i);
            assert_eq!(a.order(i)["modified"], a.time(offset));
            let shipped = a.stockout_shipped_offset(i);
            assert_eq!(a.stockout(i)["consign_time"], a.time(shipped));
            assert!(shipped <= Generator::span(i + 1));
        }
        let stockout = a.stockout(42);
        assert_eq!(stockout["src_order_no"], a.order(42)["trade_no"]);
        assert!(!stockout["details_list"].as_array().unwrap().is_empty());
    }
}
