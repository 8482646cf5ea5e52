//! Charts as inline SVG, drawn on the server: no script, and colours come from classes in
//! the stylesheet (inline `style` would need a weaker Content-Security-Policy).

use super::html::Html;

const WIDTH: i64 = 900;

/// Stacked bars per label (pass below, fail on top), with a legend.
pub fn stacked_bars(out: &mut Html, bars: &[(String, i64, i64)]) {
    if bars.is_empty() {
        out.elem("p", &[("class", "muted")], "No verdicts yet.");
        return;
    }
    let height = 220i64;
    let top = 20i64;
    let bottom = 40i64;
    let plot = height - top - bottom;
    let max = bars.iter().map(|(_, p, f)| p + f).max().unwrap_or(1).max(1);
    let slot = ((WIDTH - 60) / i64::try_from(bars.len()).unwrap_or(1).max(1)).min(64);
    let bar = (slot * 7 / 10).max(2);
    let view = format!("0 0 {WIDTH} {height}");
    out.open(
        "svg",
        &[
            ("class", "chart"),
            ("viewBox", &view),
            ("role", "img"),
            ("aria-label", "verdicts per day"),
        ],
    );
    let axis = format!("{}", top + plot);
    out.open(
        "line",
        &[
            ("class", "axis"),
            ("x1", "50"),
            ("y1", &axis),
            ("x2", &WIDTH.to_string()),
            ("y2", &axis),
        ],
    )
    .close("line");
    out.elem(
        "text",
        &[
            ("class", "tick"),
            ("x", "45"),
            ("y", &(top + 4).to_string()),
            ("text-anchor", "end"),
        ],
        &max.to_string(),
    );
    out.elem(
        "text",
        &[
            ("class", "tick"),
            ("x", "45"),
            ("y", &axis),
            ("text-anchor", "end"),
        ],
        "0",
    );
    for (i, (label, pass, fail)) in bars.iter().enumerate() {
        let x = 55 + slot * i64::try_from(i).unwrap_or(0);
        let pass_h = plot * pass / max;
        let fail_h = plot * fail / max;
        let pass_y = top + plot - pass_h;
        let fail_y = pass_y - fail_h;
        for (class, y, h, n, what) in [
            ("pass", pass_y, pass_h, pass, "pass"),
            ("fail", fail_y, fail_h, fail, "fail"),
        ] {
            if h > 0 {
                out.open(
                    "rect",
                    &[
                        ("class", class),
                        ("x", &x.to_string()),
                        ("y", &y.to_string()),
                        ("width", &bar.to_string()),
                        ("height", &h.to_string()),
                    ],
                );
                out.elem("title", &[], &format!("{label}: {n} {what}"));
                out.close("rect");
            }
        }
        if bars.len() <= 8 || i % (bars.len() / 8).max(1) == 0 {
            let lx = x + bar / 2;
            out.elem(
                "text",
                &[
                    ("class", "tick"),
                    ("x", &lx.to_string()),
                    ("y", &(height - 22).to_string()),
                    ("text-anchor", "middle"),
                ],
                &label.get(5..).unwrap_or(label).replace('T', " "),
            );
        }
    }
    out.open(
        "rect",
        &[
            ("class", "pass"),
            ("x", "780"),
            ("y", &(height - 14).to_string()),
            ("width", "10"),
            ("height", "10"),
        ],
    )
    .close("rect");
    out.elem(
        "text",
        &[
            ("class", "tick"),
            ("x", "795"),
            ("y", &(height - 5).to_string()),
        ],
        "pass",
    );
    out.open(
        "rect",
        &[
            ("class", "fail"),
            ("x", "840"),
            ("y", &(height - 14).to_string()),
            ("width", "10"),
            ("height", "10"),
        ],
    )
    .close("rect");
    out.elem(
        "text",
        &[
            ("class", "tick"),
            ("x", "855"),
            ("y", &(height - 5).to_string()),
        ],
        "fail",
    );
    out.close("svg");
}

/// One horizontal bar per (label, count), longest first as given.
pub fn horizontal_bars(out: &mut Html, bars: &[(String, i64)]) {
    if bars.is_empty() {
        out.elem("p", &[("class", "muted")], "No failed checks.");
        return;
    }
    let row = 24i64;
    let height = row * i64::try_from(bars.len()).unwrap_or(0) + 10;
    let label_w = 280i64;
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let view = format!("0 0 {WIDTH} {height}");
    out.open(
        "svg",
        &[
            ("class", "chart"),
            ("viewBox", &view),
            ("role", "img"),
            ("aria-label", "most frequent failing checks"),
        ],
    );
    for (i, (label, n)) in bars.iter().enumerate() {
        let y = 5 + row * i64::try_from(i).unwrap_or(0);
        let w = ((WIDTH - label_w - 80) * n / max).max(1);
        out.elem(
            "text",
            &[
                ("class", "label"),
                ("x", &(label_w - 8).to_string()),
                ("y", &(y + 16).to_string()),
                ("text-anchor", "end"),
            ],
            label,
        );
        out.open(
            "rect",
            &[
                ("class", "fail"),
                ("x", &label_w.to_string()),
                ("y", &(y + 3).to_string()),
                ("width", &w.to_string()),
                ("height", "16"),
            ],
        );
        out.elem("title", &[], &format!("{label}: {n}"));
        out.close("rect");
        out.elem(
            "text",
            &[
                ("class", "tick"),
                ("x", &(label_w + w + 6).to_string()),
                ("y", &(y + 16).to_string()),
            ],
            &n.to_string(),
        );
    }
    out.close("svg");
}
