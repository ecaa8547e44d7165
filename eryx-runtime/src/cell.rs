//! Where a session cell's last statement begins, and whether it is an
//! expression: the plan the prelude's `_compile_cell` follows to compile a
//! cell as source text (its lines before the last statement, then that
//! statement in `exec` or `eval` mode) instead of through `ast`.
//!
//! This only reads the text, so it runs here rather than in Python, where
//! the same string scanning cost ~10 us of every `execute` (more than a
//! third of CPython's own `compile` of a small cell). It never decides
//! alone: the prelude compiles both parts, and any `SyntaxError` (a split
//! inside a bracket or a string, an "expression" that is a statement) sends
//! the cell through `ast`, which is exact. So an answer here may be
//! unhelpful but never wrong in effect, except in one direction it must
//! avoid: calling a trailing *expression* a statement would lose its value.
//! The statement tests ([`is_assignment`], the keyword lists) therefore
//! answer "statement" only when that is plain to see.

/// How the prelude compiles a cell whose last statement begins on a line of
/// its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Where the last statement begins, in characters (Python's indices).
    pub start: usize,
    /// Newlines before `start`: the statement is compiled after as many,
    /// so that its line numbers are the cell's.
    pub newlines: usize,
    /// Whether the last statement is compiled as an expression (`eval`
    /// mode; its value is the cell's) rather than as a statement.
    pub expression: bool,
}

/// Python's hard keywords, each with what a statement that begins with it
/// is here: `c` compound (its body, after the colon, takes semicolons
/// too), `s` a simple statement, `l` a clause that continues the compound
/// statement above it (`else:`), `k` none of those. One table scanned by
/// one loop: the runtime's size counts.
const KEYWORDS: &[u8] = b"async:c class:c def:c for:c if:c try:c while:c with:c \
    assert:s break:s continue:s del:s from:s global:s import:s nonlocal:s pass:s raise:s \
    return:s elif:l else:l except:l finally:l False:k None:k True:k and:k as:k await:k \
    in:k is:k lambda:k not:k or:k yield:k";

/// What `word` is as the first word of a statement (see [`KEYWORDS`]), or
/// `None` if it is no keyword.
fn keyword(word: &[u8]) -> Option<u8> {
    KEYWORDS
        .split(|&b| b == b' ')
        .find_map(|entry| match entry {
            [name @ .., b':', kind] if name == word => Some(*kind),
            _ => None,
        })
}

/// The plan for `code`, or `None` when the cell should go through `ast`: it
/// has a carriage return or a `__future__` import, its last statement does
/// not plainly begin at column 0 (a closing bracket or a string there, a
/// backslash continuation before it), or it is an expression that `eval`
/// mode refuses (`a = 1; b`, `*a, b`).
#[inline(never)]
pub fn split(code: &str) -> Option<Split> {
    // Bytes throughout: every character compared is ASCII, and byte-wise
    // code keeps the runtime small (`str`'s pattern searchers are not).
    let code = code.as_bytes();
    if code.contains(&b'\r') || code.windows(10).any(|w| w == b"__future__") {
        return None;
    }
    let start = last_statement_start(code)?;
    let tail = &code[start..];
    let first_line = &tail[..position(tail, b'\n').unwrap_or(tail.len())];
    let semicolon = tail.contains(&b';');
    let kind = keyword(first_word(first_line));
    let statement =
        kind == Some(b'c') || (!semicolon && (kind == Some(b's') || is_assignment(first_line)));
    if !statement && (semicolon || first_line.contains(&b'*')) {
        return None;
    }
    let (mut chars, mut newlines) = (0, 0);
    for &b in &code[..start] {
        // Characters: bytes that do not continue a UTF-8 sequence.
        chars += usize::from(b & 0xc0 != 0x80);
        newlines += usize::from(b == b'\n');
    }
    Some(Split {
        start: chars,
        newlines,
        expression: !statement,
    })
}

/// The first index of `byte` in `s`.
fn position(s: &[u8], byte: u8) -> Option<usize> {
    s.iter().position(|&b| b == byte)
}

/// The statement's first word: up to the first space within its first ten
/// bytes, without trailing colons (`try:` is `try`). Every keyword compared
/// with it is ASCII and shorter, so bytes and characters agree.
fn first_word(line: &[u8]) -> &[u8] {
    let window = &line[..line.len().min(10)];
    let mut word = &window[..position(window, b' ').unwrap_or(window.len())];
    while let [rest @ .., b':'] = word {
        word = rest;
    }
    word
}

/// The byte offset of the line at column 0 that begins the cell's last
/// top-level statement (with its decorators), or `None` when that is not
/// plain to see. Blank, indented and comment lines are skipped, and so are
/// `else:`/`except E:`/... lines, which continue the statement above.
fn last_statement_start(code: &[u8]) -> Option<usize> {
    let mut found: Option<usize> = None;
    let mut end = code.len();
    while end > 0 {
        let newline = code[..end].iter().rposition(|&b| b == b'\n');
        let start = newline.map_or(0, |n| n + 1);
        // The first line ends the loop after this round.
        end = newline.unwrap_or(0);
        match code.get(start).copied() {
            None | Some(b' ' | b'\t' | b'\x0c' | b'#' | b'\n') => continue,
            Some(c) if found.is_some() => {
                if c != b'@' {
                    break;
                }
                found = Some(start);
            }
            Some(b')' | b']' | b'}' | b'\'' | b'"') => return None,
            Some(_) if is_clause(&code[start..]) => continue,
            Some(_) => found = Some(start),
        }
    }
    let found = found?;
    if found > 0 && code[..found].ends_with(b"\\\n") {
        return None;
    }
    Some(found)
}

/// Whether `line` begins with `else`, `elif`, `except` or `finally` as a
/// word (before any colon or whitespace, within its first 16 bytes).
fn is_clause(line: &[u8]) -> bool {
    let window = &line[..line.len().min(16)];
    let end = window
        .iter()
        .position(|&b| b == b':' || b.is_ascii_whitespace())
        .unwrap_or(window.len());
    keyword(&window[..end]) == Some(b'l')
}

/// Whether `line`, the first line of a statement, assigns to or annotates
/// plain targets (`x = ...`, `a.b, c[0] += ...`, `x: int = ...`): then the
/// statement cannot be an expression. Anything unusual answers `false`
/// (compiled as an expression, which fails over to `ast` if it is not one).
fn is_assignment(line: &[u8]) -> bool {
    let eq = position(line, b'=');
    let colon = position(line, b':');
    let next_is_eq = |i: usize| line.get(i + 1) == Some(&b'=');
    let head = match (colon, eq) {
        (Some(c), _) if c > 0 && eq.is_none_or(|e| c < e) && !next_is_eq(c) => &line[..c],
        (_, Some(e)) if e > 0 && !next_is_eq(e) => {
            // Without an augmented operator (`<` and `>` only doubled:
            // `x <= 1` is a comparison).
            let mut head = &line[..e];
            while let [rest @ .., last] = head
                && last.is_ascii_whitespace()
            {
                head = rest;
            }
            while let [
                rest @ ..,
                b'+' | b'-' | b'*' | b'/' | b'%' | b'@' | b'&' | b'|' | b'^',
            ] = head
            {
                head = rest;
            }
            match head {
                [rest @ .., b'<', b'<'] | [rest @ .., b'>', b'>'] => rest,
                _ => head,
            }
        }
        _ => return false,
    };
    // Only target characters, `[` and `]` balanced.
    let mut depth = 0i32;
    for &b in head {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b'_' | b'.' | b',' | b' ' | b'*' => {}
            _ if b.is_ascii_alphanumeric() => {}
            _ => return false,
        }
    }
    let first = &head[..position(head, b' ').unwrap_or(head.len())];
    depth == 0 && keyword(first).is_none()
}
