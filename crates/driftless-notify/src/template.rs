//! A small, safe substitution language for notification bodies.
//!
//! Written by hand on purpose: a general template engine (Handlebars, Tera, minijinja) brings
//! loops, conditionals, helpers and sometimes file access, none of which a notification needs,
//! and each of which is attack surface for a file that operators copy from the internet. Here a
//! template is literal text with placeholders and nothing else:
//!
//! | placeholder | value |
//! |---|---|
//! | `{{app}}` | application name |
//! | `{{revision}}` | full revision (commit) |
//! | `{{shortRevision}}` | first 7 characters of the revision |
//! | `{{kind}}` | event kind, kebab-case (`sync-failed`) |
//! | `{{message}}` | the event's message |
//! | `{{time}}` | event time, RFC 3339 UTC (`2024-05-01T12:00:00Z`) |
//! | `{{details}}` | all details as compact JSON |
//! | `{{details.a.b.0}}` | one field of the details: object keys, array indices |
//!
//! Spaces inside the braces are allowed (`{{ app }}`). There is no escape for a literal `{{`:
//! every `{{` must open a valid placeholder, so a typo is an error when the configuration is
//! loaded, never a surprise when the first notification goes out.
//!
//! A `details` path that is absent from an event renders as the empty string; a string renders
//! as its text; any other JSON value renders as compact JSON.
//!
//! **Escaping.** [`Escape::Json`] (webhook bodies) JSON-escapes every substituted value *without*
//! adding quotes, so placeholders belong inside string literals: `{"app": "{{app}}"}`. A value
//! can then never break out of its string and change the structure of the body. The webhook
//! receiver checks at load time that the template is valid JSON with sample values, which also
//! rejects a placeholder written outside a string literal. [`Escape::None`] inserts
//! values as they are; [`Escape::Slack`] (Slack text) escapes `&`, `<`, `>` in values so an
//! event cannot inject mentions or links; the text is then JSON-encoded as a whole.
//!
//! **Bounded output.** Templates are at most [`MAX_TEMPLATE_BYTES`] with at most
//! [`MAX_PLACEHOLDERS`] placeholders, and each substituted value is cut to
//! [`MAX_VALUE_CHARS`] characters, so the output size has a fixed upper bound whatever the event
//! holds.

use serde_json::Value;

use crate::Event;

/// Largest accepted template, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Most placeholders one template may contain.
pub const MAX_PLACEHOLDERS: usize = 64;
/// Substituted values longer than this many characters are cut and end with `…`.
pub const MAX_VALUE_CHARS: usize = 2000;
/// Most segments in a `details.…` path.
const MAX_PATH_SEGMENTS: usize = 16;

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is larger than [`MAX_TEMPLATE_BYTES`].
    #[error("template is {size} bytes, more than the limit of {MAX_TEMPLATE_BYTES}")]
    TooLarge {
        /// Size of the template in bytes.
        size: usize,
    },
    /// The template has more than [`MAX_PLACEHOLDERS`] placeholders.
    #[error("template has more than {MAX_PLACEHOLDERS} placeholders")]
    TooManyPlaceholders,
    /// A `{{` without a matching `}}`.
    #[error("unterminated placeholder at byte {offset}: `{{{{` without `}}}}`")]
    Unterminated {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A placeholder whose name is not one of the supported ones.
    #[error(
        "unknown placeholder `{{{{{name}}}}}` at byte {offset}; known: app, revision, shortRevision, kind, \
         message, time, details, details.<path>"
    )]
    UnknownPlaceholder {
        /// The text between the braces, trimmed.
        name: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// The rendered webhook template is not valid JSON.
    #[error(
        "template does not produce valid JSON ({reason}); write placeholders inside string literals, \
         e.g. {{\"app\": \"{{{{app}}}}\"}}"
    )]
    NotJson {
        /// The JSON parser's message.
        reason: String,
    },
}

/// How substituted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// JSON string escaping without the surrounding quotes (for webhook JSON bodies).
    Json,
    /// Values are inserted as they are (for plain text that is encoded as a whole later).
    None,
    /// Slack message text: `&`, `<` and `>` in values become `&amp;`, `&lt;`, `&gt;`, as
    /// Slack asks, so an app name or message cannot inject `<!channel>` mentions or links.
    /// Markdown renderers (Mattermost, Rocket.Chat) decode these entities back.
    Slack,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    App,
    Revision,
    ShortRevision,
    Kind,
    Message,
    Time,
    Details(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(Field),
}

/// A parsed template, ready to render any number of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parse a template; unknown placeholders and unterminated braces are errors.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLarge { size: text.len() });
        }
        let mut segments = Vec::new();
        let mut placeholders = 0;
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let start = offset + open;
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unterminated { offset: start })?;
            let name = after[..close].trim();
            let field = parse_field(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                name: name.to_string(),
                offset: start,
            })?;
            placeholders += 1;
            if placeholders > MAX_PLACEHOLDERS {
                return Err(TemplateError::TooManyPlaceholders);
            }
            segments.push(Segment::Field(field));
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Template { segments })
    }

    /// Render `event` with the given escaping.
    pub fn render(&self, event: &Event, escape: Escape) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Field(field) => {
                    let value = truncate(field_value(field, event));
                    match escape {
                        Escape::None => out.push_str(&value),
                        Escape::Json => out.push_str(&json_escape(&value)),
                        Escape::Slack => out.push_str(&slack_escape(&value)),
                    }
                }
            }
        }
        out
    }

    /// Check that this template renders valid JSON (with [`Escape::Json`]) for a sample event
    /// with no details, so a broken webhook template is reported at load time.
    pub fn check_json(&self) -> Result<(), TemplateError> {
        let sample = Event {
            kind: crate::EventKind::SyncFailed,
            app: "sample \"app\"".to_string(),
            revision: "0123456789abcdef0123456789abcdef01234567".to_string(),
            message: "line one\nline \"two\"".to_string(),
            details: Value::Object(Default::default()),
            time: 0,
        };
        let body = self.render(&sample, Escape::Json);
        serde_json::from_str::<Value>(&body)
            .map(drop)
            .map_err(|e| TemplateError::NotJson { reason: e.to_string() })
    }
}

fn parse_field(name: &str) -> Option<Field> {
    Some(match name {
        "app" => Field::App,
        "revision" => Field::Revision,
        "shortRevision" => Field::ShortRevision,
        "kind" => Field::Kind,
        "message" => Field::Message,
        "time" => Field::Time,
        "details" => Field::Details(Vec::new()),
        _ => {
            let path = name.strip_prefix("details.")?;
            let segments: Vec<String> = path.split('.').map(str::to_string).collect();
            let valid =
                |s: &String| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if segments.len() > MAX_PATH_SEGMENTS || !segments.iter().all(valid) {
                return None;
            }
            Field::Details(segments)
        }
    })
}

fn field_value(field: &Field, event: &Event) -> String {
    match field {
        Field::App => event.app.clone(),
        Field::Revision => event.revision.clone(),
        Field::ShortRevision => short_revision(&event.revision).to_string(),
        Field::Kind => event.kind.as_str().to_string(),
        Field::Message => event.message.clone(),
        Field::Time => rfc3339(event.time),
        Field::Details(path) => {
            let mut value = &event.details;
            for key in path {
                let next = match value {
                    Value::Object(map) => map.get(key),
                    Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                    _ => None,
                };
                match next {
                    Some(v) => value = v,
                    None => return String::new(),
                }
            }
            match value {
                Value::String(s) => s.clone(),
                Value::Null if path.is_empty() => String::new(),
                other => other.to_string(),
            }
        }
    }
}

/// The first 7 characters of a revision (the usual short commit form).
pub fn short_revision(revision: &str) -> &str {
    match revision.char_indices().nth(7) {
        Some((i, _)) => &revision[..i],
        None => revision,
    }
}

/// Cut a value to [`MAX_VALUE_CHARS`] characters.
pub(crate) fn truncate(value: String) -> String {
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        Some((i, _)) => {
            let mut cut = value[..i].to_string();
            cut.push('…');
            cut
        }
        None => value,
    }
}

/// Escape `&`, `<`, `>` for Slack message text.
pub fn slack_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string());
    quoted[1..quoted.len() - 1].to_string()
}

/// Format Unix seconds as RFC 3339 UTC. Hand-written (civil-from-days) to avoid a date crate.
pub fn rfc3339(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use serde_json::json;

    fn event() -> Event {
        Event {
            kind: EventKind::SyncSucceeded,
            app: "guestbook".into(),
            revision: "abc1234def5678".into(),
            message: "synced 3 objects".into(),
            details: json!({"objects": [{"kind": "Deployment", "name": "web"}], "count": 3, "env": "prod"}),
            time: 1_714_564_800,
        }
    }

    #[test]
    fn substitutes_every_placeholder() {
        let t = Template::parse(
            "{{app}}|{{ revision }}|{{shortRevision}}|{{kind}}|{{message}}|{{time}}|{{details.env}}|\
             {{details.count}}|{{details.objects.0.name}}|{{details.missing.x}}|{{details.objects.9}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&event(), Escape::None),
            "guestbook|abc1234def5678|abc1234|sync-succeeded|synced 3 objects|2024-05-01T12:00:00Z|prod|3|web||"
        );
    }

    #[test]
    fn whole_details_and_objects_render_as_json() {
        let t = Template::parse("{{details.objects.0}}").unwrap();
        assert_eq!(
            t.render(&event(), Escape::None),
            r#"{"kind":"Deployment","name":"web"}"#
        );
        let mut e = event();
        e.details = Value::Null;
        assert_eq!(Template::parse("[{{details}}]").unwrap().render(&e, Escape::None), "[]");
    }

    #[test]
    fn json_escaping_keeps_values_inside_strings() {
        let t = Template::parse(r#"{"text": "{{message}}", "app": "{{app}}"}"#).unwrap();
        t.check_json().unwrap();
        let mut e = event();
        e.message = "evil\", \"injected\": \"yes\n\\".into();
        let body = t.render(&e, Escape::Json);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], json!("evil\", \"injected\": \"yes\n\\"));
        assert!(v.get("injected").is_none());
    }

    #[test]
    fn unknown_placeholders_and_bad_syntax_are_errors() {
        assert!(matches!(
            Template::parse("hi {{ap}}"),
            Err(TemplateError::UnknownPlaceholder { ref name, offset: 3 }) if name == "ap"
        ));
        assert!(matches!(
            Template::parse("{{details.}}"),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            Template::parse("{{details.a b}}"),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            Template::parse("{{exec \"rm\"}}"),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            Template::parse("x {{app"),
            Err(TemplateError::Unterminated { offset: 2 })
        ));
        assert!(matches!(
            Template::parse(&"a".repeat(MAX_TEMPLATE_BYTES + 1)),
            Err(TemplateError::TooLarge { .. })
        ));
        assert_eq!(
            Template::parse(&"{{app}}".repeat(MAX_PLACEHOLDERS + 1)),
            Err(TemplateError::TooManyPlaceholders)
        );
        // Single braces are plain text.
        assert_eq!(
            Template::parse("{ } }}").unwrap().render(&event(), Escape::None),
            "{ } }}"
        );
    }

    #[test]
    fn placeholder_outside_string_literal_fails_json_check() {
        let t = Template::parse(r#"{"count": {{details.count}}}"#).unwrap();
        assert!(matches!(t.check_json(), Err(TemplateError::NotJson { .. })));
        let t = Template::parse(r#"{"app": "{{app}}""#).unwrap();
        assert!(matches!(t.check_json(), Err(TemplateError::NotJson { .. })));
    }

    #[test]
    fn slack_escaping_defuses_mentions() {
        let mut e = event();
        e.message = "<!channel> a & b".into();
        let t = Template::parse("<https://ci.example.com|CI> {{message}}").unwrap();
        assert_eq!(
            t.render(&e, Escape::Slack),
            "<https://ci.example.com|CI> &lt;!channel&gt; a &amp; b"
        );
    }

    #[test]
    fn output_is_bounded() {
        let mut e = event();
        e.message = "x".repeat(100_000);
        let out = Template::parse("{{message}}").unwrap().render(&e, Escape::None);
        assert_eq!(out.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn short_revisions() {
        assert_eq!(short_revision("abc"), "abc");
        assert_eq!(short_revision("0123456789"), "0123456");
    }
}
