//! Mapping an Odoo order to a Klarna body: a 50-line and a 1000-line order built from a
//! real Odoo 18 fixture order (S00043, EUR, 17 lines incl. discounts, fixed and included
//! taxes), its lines repeated.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use klarna_types::mapping::{MappingOptions, map_order};
use klarna_types::money::Currency;
use klarna_types::odoo::{OrderDocument, SaleOrderLine};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const FIXTURES: &str = include_str!("../../../fixtures/odoo18-orders.jsonl");

fn order_with(lines: usize) -> OrderDocument {
    let mut doc: OrderDocument = FIXTURES
        .lines()
        .filter_map(|l| serde_json::from_str::<OrderDocument>(l).ok())
        .find(|d| d.order.name == "S00043")
        .expect("fixture S00043");
    let priced: Vec<_> = doc
        .lines
        .iter()
        .filter(|l| l.display_type.is_none())
        .cloned()
        .collect();
    doc.lines = priced.iter().cycle().take(lines).cloned().collect();
    for (i, l) in doc.lines.iter_mut().enumerate() {
        l.id = i64::try_from(i).unwrap_or(0) + 1;
    }
    // Odoo's totals for the repeated lines (round_per_line: the sum of the line totals).
    let eur = Currency::new("EUR").expect("EUR");
    let sum = |field: fn(&SaleOrderLine) -> f64| -> i64 {
        doc.lines
            .iter()
            .map(|l| eur.minor_from_f64(field(l)).expect("amount"))
            .sum()
    };
    let (total, untaxed) = (sum(|l| l.price_total), sum(|l| l.price_subtotal));
    let odoo_float = |minor: i64| Decimal::new(minor, 2).to_f64().expect("fits");
    doc.order.amount_total = odoo_float(total);
    doc.order.amount_untaxed = odoo_float(untaxed);
    doc.order.amount_tax = odoo_float(total - untaxed);
    doc
}

fn mapping(c: &mut Criterion) {
    let opts = MappingOptions::default();
    let mut group = c.benchmark_group("map_order");
    for lines in [50, 1000] {
        let doc = order_with(lines);
        map_order(&doc, &opts).expect("the benchmark order is valid");
        group.bench_with_input(BenchmarkId::from_parameter(lines), &doc, |b, doc| {
            b.iter(|| map_order(black_box(doc), &opts));
        });
    }
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
