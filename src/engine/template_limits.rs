//! Limits on rendering a chat template that came with a model file (a GGUF's
//! `tokenizer.chat_template`, a folder's tokenizer_config.json): untrusted code. A template
//! that loops forever, or asks for a string of 10^15 bytes, must end in a clear error, not a
//! hang or an allocation abort.
//!
//! - Fuel: every template instruction costs one unit; a render gets [`FUEL`] (real chat
//!   templates of Llama 3, Gemma and ChatML use a few thousand for one turn).
//! - Output: a rendered prompt longer than [`MAX_OUTPUT_BYTES`] is an error.
//! - Filters that build a string sized by an argument (`indent`, `tojson`'s indent, `format`'s
//!   widths) are replaced by versions that refuse widths above [`MAX_WIDTH`] before they
//!   allocate. (`"x" * n` is bounded by minijinja itself, at 100 MB; `range` at 100 000 items.)

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};

/// Template instructions one render may run.
pub const FUEL: u64 = 20_000_000;
/// Longest rendered prompt: far above any real prompt (a few KB), far below harm.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;
/// Widest indent or format width a template may ask for.
pub const MAX_WIDTH: usize = 10_000;

/// Install the limits on an environment that renders untrusted templates.
pub fn install(env: &mut Environment<'_>) {
    env.set_fuel(Some(FUEL));
    env.add_filter("indent", indent);
    env.add_filter("tojson", tojson);
    env.add_filter("format", format);
}

fn too_wide(what: &str, width: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} {width} is wider than the {MAX_WIDTH} a chat template may ask for"),
    )
}

/// jinja2's `indent(width=4, first=false, blank=false)`, refusing absurd widths.
fn indent(
    value: String,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let width = match width {
        Some(w) => w,
        None => kwargs.get::<Option<usize>>("width")?.unwrap_or(4),
    };
    let first = match first {
        Some(f) => f,
        None => kwargs.get::<Option<bool>>("first")?.unwrap_or(false),
    };
    let blank = match blank {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("blank")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    if width > MAX_WIDTH {
        return Err(too_wide("indent", width));
    }
    // As minijinja's own `indent` (filters.rs), once the width is known to be sane.
    let strip = |s: &str| -> usize {
        let s = s.strip_suffix('\n').unwrap_or(s);
        s.strip_suffix('\r').unwrap_or(s).len()
    };
    let input = &value[..strip(&value)];
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(input.len() + 16);
    let mut lines = input.split('\n');
    if !first {
        out.push_str(lines.next().unwrap_or(""));
        out.push('\n');
    }
    for line in lines {
        if !line.is_empty() || blank {
            out.push_str(&pad);
        }
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(strip(&out));
    Ok(out)
}

/// minijinja's `tojson`, refusing an absurd indent.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let requested = match &indent {
        Some(v) => Some(v.clone()),
        None => kwargs.peek::<Option<Value>>("indent")?,
    };
    if let Some(n) = requested.and_then(|v| usize::try_from(v).ok()) {
        if n > MAX_WIDTH {
            return Err(too_wide("tojson indent", n));
        }
    }
    minijinja::filters::tojson(value, indent, kwargs)
}

/// `"%5d"|format(x)`, refusing widths and precisions above `MAX_WIDTH`.
fn format(format: String, args: minijinja::value::Rest<Value>) -> Result<String, Error> {
    check_format_widths(&format)?;
    minijinja::format_filter(minijinja::FormatStyle::Printf, &format, &args)
}

/// Any number in a format string above `MAX_WIDTH` (a width or precision; literal text rarely
/// holds such numbers and is refused too, harmlessly).
pub fn check_format_widths(format: &str) -> Result<(), Error> {
    for run in format.split(|c: char| !c.is_ascii_digit()) {
        if run.is_empty() {
            continue;
        }
        let value = run.parse::<usize>().unwrap_or(usize::MAX);
        if value > MAX_WIDTH {
            return Err(too_wide("format width", value));
        }
    }
    Ok(())
}

/// Python string methods (`minijinja_contrib::pycompat`), with `str.format`'s widths checked.
pub fn unknown_method_callback(
    state: &minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if method == "format" {
        if let Some(s) = value.as_str() {
            check_format_widths(s)?;
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// An `io::Write` that refuses to grow beyond `MAX_OUTPUT_BYTES`.
#[derive(Default)]
pub struct CappedOutput {
    pub bytes: Vec<u8>,
    pub overflowed: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("rendered prompt too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::chat_template::ChatTemplate;

    fn render(template: &str) -> crate::Result<String> {
        ChatTemplate::new(Some(template), "<s>", "</s>")?.render_user_turn("Hi\nthere")
    }

    #[test]
    fn hostile_templates_end_in_errors_not_aborts_or_hangs() {
        let t0 = std::time::Instant::now();
        let cases = [
            ("{{ ''|indent(10**15) }}", "wider than"),
            ("{{ 'a\nb'|indent(width=10**15) }}", "wider than"),
            ("{{ messages|tojson(indent=10**12) }}", "wider than"),
            ("{{ '%1000000000000d'|format(1) }}", "wider than"),
            ("{{ '{:>1000000000000}'.format(1) }}", "wider than"),
            (
                "{% for a in range(100000) %}{% for b in range(100000) %}\
                 {% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
                "fuel",
            ),
            (
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
                "",
            ),
            ("{{ 'x' * 99999999 }}", "exceeds"),
        ];
        for (template, want) in cases {
            let err = render(template).unwrap_err().to_string();
            assert!(err.contains(want), "{template}: {err}");
        }
        // Bounded by the fuel and output limits, not by luck: all of them in a few seconds.
        assert!(t0.elapsed().as_secs() < 60, "{:?}", t0.elapsed());
    }

    #[test]
    fn the_replaced_filters_render_as_minijinjas_own() {
        let mut plain = minijinja::Environment::new();
        plain.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        for template in [
            "{{ 'a\n\nb\n'|indent }}",
            "{{ 'a\n\nb'|indent(2, true) }}",
            "{{ 'a\n\nb'|indent(width=3, first=true, blank=true) }}",
            "{{ ''|indent(2) }}",
            "{{ 'x\r\n'|indent(2, first=true) }}",
            "{{ {'k': [1, 2]}|tojson(indent=2) }}",
            "{{ {'k': 1}|tojson }}",
            "{{ '%05d|%-4s|'|format(42, 'ab') }}",
            "{{ '{:>6}'.format('ab') }}",
        ] {
            let want = plain.render_str(template, ()).unwrap();
            let mut env = minijinja::Environment::new();
            env.set_unknown_method_callback(super::unknown_method_callback);
            super::install(&mut env);
            assert_eq!(env.render_str(template, ()).unwrap(), want, "{template}");
        }
    }
}
