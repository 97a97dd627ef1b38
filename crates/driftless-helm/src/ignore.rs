//! `.helmignore`: which files of a chart directory Helm leaves out.
//!
//! Helm's own rules (its `pkg/ignore`), not gitignore's: one pattern per line, `#` comments, a
//! leading `!` negates, a trailing `/` matches directories only, a pattern containing `/` is
//! matched against the path from the chart root, any other against the base name, matching
//! is Go's `filepath.Match` (`*`, `?`, `[…]`, `\` escapes; no `**`, which Helm refuses).
//! Helm always adds `templates/.?*` (hidden files under `templates/`).
//!
//! Helm's negation has a quirk kept here on purpose: a `!pattern` that does *not* match a
//! path makes that path ignored. Real `.helmignore` files put negations last and rarely; the
//! rule is reproduced so that the same files are loaded as by `helm template`.

/// A parse error in `.helmignore`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".helmignore: {0}")]
pub struct IgnoreError(pub String);

#[derive(Debug, Clone)]
struct Pattern {
    glob: String,
    negate: bool,
    must_dir: bool,
    /// Match against the whole relative path (the pattern had a `/`), else the base name.
    full_path: bool,
}

/// Parsed `.helmignore` rules.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses the text of a `.helmignore` file and adds Helm's default rule.
    pub fn parse(text: &str) -> Result<IgnoreRules, IgnoreError> {
        let mut rules = IgnoreRules::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for line in text.lines() {
            rules.add(line)?;
        }
        rules.add("templates/.?*")?;
        Ok(rules)
    }

    /// The rules of a chart without `.helmignore` (Helm's default rule only).
    pub fn defaults() -> IgnoreRules {
        let mut rules = IgnoreRules::default();
        // A constant pattern that is known to parse.
        let _ = rules.add("templates/.?*");
        rules
    }

    fn add(&mut self, rule: &str) -> Result<(), IgnoreError> {
        let rule = rule.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err(IgnoreError(format!("{rule}: double-star (**) syntax is not supported")));
        }
        glob_match(rule, "abc").map_err(|e| IgnoreError(format!("{rule}: {e}")))?;
        let mut glob = rule;
        let negate = glob.starts_with('!');
        if negate {
            glob = &glob[1..];
        }
        let must_dir = glob.ends_with('/');
        if must_dir {
            glob = &glob[..glob.len() - 1];
        }
        let (glob, full_path) = if let Some(rest) = glob.strip_prefix('/') {
            (rest, true)
        } else {
            (glob, glob.contains('/'))
        };
        self.patterns.push(Pattern {
            glob: glob.to_string(),
            negate,
            must_dir,
            full_path,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart root, `/`-separated) is ignored.
    pub fn ignored(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for p in &self.patterns {
            let subject = if p.full_path {
                path
            } else {
                path.rsplit('/').next().unwrap_or(path)
            };
            let matched = glob_match(&p.glob, subject).unwrap_or(false);
            if p.negate {
                if p.must_dir && !is_dir {
                    return true;
                }
                if !matched {
                    return true;
                }
                continue;
            }
            if p.must_dir && !is_dir {
                continue;
            }
            if matched {
                return true;
            }
        }
        false
    }
}

/// Go's `path/filepath.Match` on `/`-separated names: `*` is any run of non-`/` characters,
/// `?` one non-`/` character, `[…]` a class (`^` negates, ranges `a-z`, `\` escapes), `\x`
/// matches `x`. Errors on a malformed pattern (`ErrBadPattern`). Written by hand: it is twenty
/// lines and the glob crates implement other dialects.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first (Go reports a bad pattern even when matching fails early).
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("syntax error in pattern".into());
                }
                i += 2;
            }
            '[' => i = class_end(&p, i)?.1,
            _ => i += 1,
        }
    }
    Ok(match_from(&p, &n))
}

fn match_from(p: &[char], n: &[char]) -> bool {
    // Iterative star backtracking (one star position remembered) keeps this linear-ish and free
    // of recursion on hostile patterns.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Ok((matched, end)) = class_match(p, pi, n[ni])
                        && matched
                        && n[ni] != '/'
                    {
                        pi = end;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '\\' && c != '?' && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        // Backtrack: let the last star eat one more character (never a separator).
        match star {
            Some((sp, sn)) if n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Finds the end of the class starting at `p[start] == '['`: (negated, index after `]`).
fn class_end(p: &[char], start: usize) -> Result<(bool, usize), String> {
    let mut i = start + 1;
    let negated = i < p.len() && p[i] == '^';
    if negated {
        i += 1;
    }
    let mut first = true;
    loop {
        if i >= p.len() {
            return Err("syntax error in pattern".into());
        }
        if p[i] == ']' && !first {
            return Ok((negated, i + 1));
        }
        first = false;
        // one char (possibly escaped), optionally a range
        let lo_len = if p[i] == '\\' { 2 } else { 1 };
        if p[i] == ']' || p[i] == '-' {
            return Err("syntax error in pattern".into());
        }
        i += lo_len;
        if i > p.len() {
            return Err("syntax error in pattern".into());
        }
        if i < p.len() && p[i] == '-' {
            i += 1;
            if i >= p.len() || p[i] == ']' {
                return Err("syntax error in pattern".into());
            }
            i += if p[i] == '\\' { 2 } else { 1 };
        }
    }
}

fn class_match(p: &[char], start: usize, c: char) -> Result<(bool, usize), String> {
    let (negated, end) = class_end(p, start)?;
    let mut i = start + 1 + usize::from(negated);
    let mut matched = false;
    while i < end - 1 {
        let lo = if p[i] == '\\' {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        i += 1;
        let hi = if i < end - 1 && p[i] == '-' {
            i += 1;
            let h = if p[i] == '\\' {
                i += 1;
                p[i]
            } else {
                p[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Ok((matched != negated, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        for (pat, name, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("*.txt", "notes.txt", true),
            ("*.txt", "dir/notes.txt", false),
        ] {
            assert_eq!(glob_match(pat, name), Ok(want), "{pat} vs {name}");
        }
        assert!(glob_match("[", "a").is_err());
        assert!(glob_match("a[", "a").is_err());
        assert!(glob_match("\\", "a").is_err());
    }

    #[test]
    fn helmignore_rules() {
        let r = IgnoreRules::parse("# comment\n*.swp\n/secret.txt\nconf/skip.conf\ntmp/\n.git\n").unwrap();
        assert!(r.ignored("a.swp", false));
        assert!(r.ignored("conf/x.swp", false), "base-name patterns match at any depth");
        assert!(r.ignored("secret.txt", false));
        assert!(!r.ignored("conf/secret.txt", false));
        assert!(r.ignored("conf/skip.conf", false));
        assert!(r.ignored("tmp", true));
        assert!(!r.ignored("tmp", false), "trailing slash matches directories only");
        assert!(r.ignored("templates/.hidden.yaml", false), "Helm's default rule");
        assert!(!r.ignored("templates/deploy.yaml", false));
        assert!(r.ignored(".git", true));
        assert!(IgnoreRules::parse("a/**/b").is_err());
    }

    #[test]
    fn helm_negation_quirk() {
        // Helm: a negated pattern that does not match ignores the path.
        let r = IgnoreRules::parse("!keep.txt\n").unwrap();
        assert!(r.ignored("other.txt", false));
        assert!(!r.ignored("keep.txt", false));
    }
}
