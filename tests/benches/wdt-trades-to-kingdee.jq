# The mapping of schemes/wdt-trades-to-kingdee.yaml written in jq, for the benchmark's side-by-side run.
# jq has only binary floats, so its prices are rounded in floating point: fine for timing, wrong for money.
# The value maps come from `--slurpfile maps FILE` (the scheme's value_maps, entries as JSON objects), so
# jq and Ferry map with the same tables, however many entries they hold.
def shop_customer: . as $s | $maps[0].shop_customer[$s] // error("shop \($s) has no customer");
def warehouse_stock: . as $w | $maps[0].warehouse_stock[$w] // $w;
def material: . as $m | $maps[0].material[$m] // $m;
def unit: . as $u | $maps[0].unit[$u] // $u;
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
        materialid_id: (.spec_no | material),
        stockid_id: ($wh | warehouse_stock),
        qty: (((.num | num) - ((.refund_num // 0) | num)) | tostring),
        unit_id: (.unit_name | unit),
        taxprice: ((.share_price | num) * 10000 | round / 10000 | tostring),
        is_free: ((.gift_type | tostring) != "0")
      }
  ]
}
