# The mapping of schemes/wdt-trades-to-kingdee.yaml written in jq, for the benchmark's side-by-side run.
# jq has only binary floats, so its prices are rounded in floating point: fine for timing, wrong for money.
def shop_customer: . as $s
  | {"tmall-001": "CUST-TMALL", "jd-001": "CUST-JD", "pdd-001": "CUST-PDD", "douyin-001": "CUST-DOUYIN",
     "wxshop-001": "CUST-WEIXIN"}[$s] // error("shop \($s) has no customer");
def warehouse_stock: . as $w | {"WH-BJ01": "CK001", "WH-SH01": "CK002", "WH-GZ01": "CK003"}[$w] // $w;
def unit: . as $u | {"个": "Pcs", "件": "Pcs", "盒": "Box", "瓶": "Btl", "袋": "Bag", "套": "Set"}[$u] // $u;
def num: if type == "number" then . else tonumber end;
{
  billdate: .trade_time[0:10],
  billno: .trade_no,
  customerid_id: (.shop_no | shop_customer),
  custom_field__4__2obgp309axx5_number: "XM-ECOM",
  material_entity: [
    .warehouse_no as $wh
    | .goods_list[]
    | select((.refund_status | tostring) != "5")
    | {
        materialid_id: .spec_no,
        stockid_id: ($wh | warehouse_stock),
        qty: (((.num | num) - ((.refund_num // 0) | num)) | tostring),
        unit_id: (.unit_name | unit),
        taxprice: ((.share_price | num) * 10000 | round / 10000 | tostring),
        is_free: ((.gift_type | tostring) != "0")
      }
  ]
}
