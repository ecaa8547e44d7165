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
//! The statement tests ([`is_assignment`], the keyword table) therefore
//! answer "statement" only when that is plain to see.

/// Python's hard keywords, each with what a statement that begins with it
/// is here: `c` compound (its body, after the colon, takes semicolons
/// too), `s` a simple statement, `l` a clause that continues the compound
/// statement above it (`else:`), `k` none of those. Rows of [`ROW`] bytes:
/// the name padded with spaces to 8, then its kind. Fixed rows are read
/// without scanning every byte for a separator: a cell's plan looks up a
/// word or three, and a table split at spaces cost ~2 us of each call.
const KEYWORDS: &[u8] = b"async   cclass   cdef     cfor     c\
    if      ctry     cwhile   cwith    c\
    assert  sbreak   scontinuesdel     s\
    from    sglobal  simport  snonlocals\
    pass    sraise   sreturn  selif    l\
    else    lexcept  lfinally lFalse   k\
    None    kTrue    kand     kas      k\
    await   kin      kis      klambda  k\
    not     kor      kyield   k";

/// A row of [`KEYWORDS`]: an 8-byte name and its kind.
const ROW: usize = 9;

/// What `word` is as the first word of a statement (see [`KEYWORDS`]), or
/// `None` if it is no keyword. `word` has no whitespace (callers cut it
/// there), so a name's padding never matches; an empty word matches none.
fn keyword(word: &[u8]) -> Option<u8> {
    KEYWORDS.chunks_exact(ROW).find_map(|row| {
        let (name, kind) = row.split_at(ROW - 1);
        (name.starts_with(word) && name.get(word.len()).is_none_or(|&b| b == b' '))
            .then_some(kind[0])
    })
}

/// The plan for `code`: `2 * start + expression`, where `start` is where
/// its last statement begins, in characters (Python's indices), and
/// `expression` whether that statement is compiled as an expression
/// (`eval` mode; its value is the cell's). `None` when the cell should go
/// through `ast`: its last statement does not plainly begin at column 0
/// (a closing bracket or a string there, a backslash continuation before
/// it), or it is an expression that `eval` mode refuses (`a = 1; b`,
/// `*a, b`). (The prelude itself sends cells with a carriage return or a
/// `__future__` import through `ast`.)
#[inline(never)]
pub fn split(code: &str) -> Option<usize> {
    // Bytes throughout: every character compared is ASCII, and byte-wise
    // code keeps the runtime small (`str`'s pattern searchers are not).
    let code = code.as_bytes();
    let start = last_statement_start(code)?;
    let tail = &code[start..];
    let first_line = &tail[..position(tail, b'\n').unwrap_or(tail.len())];
    let semicolon = position(tail, b';').is_some();
    let kind = keyword(first_word(first_line));
    let statement =
        kind == Some(b'c') || (!semicolon && (kind == Some(b's') || is_assignment(first_line)));
    if !statement && (semicolon || position(first_line, b'*').is_some()) {
        return None;
    }
    // Characters: bytes that do not continue a UTF-8 sequence.
    let chars = code[..start].iter().filter(|&&b| b & 0xc0 != 0x80).count();
    Some(2 * chars + usize::from(!statement))
}

/// The first index of `byte` in `s`.
fn position(s: &[u8], byte: u8) -> Option<usize> {
    s.iter().position(|&b| b == byte)
}

/// A statement's first word: up to a colon or whitespace (`try:` is
/// `try`). Every keyword compared with it is ASCII.
fn first_word(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .position(|&b| b == b':' || b.is_ascii_whitespace())
        .unwrap_or(line.len());
    &line[..end]
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
            Some(_) if keyword(first_word(&code[start..])) == Some(b'l') => continue,
            Some(_) => found = Some(start),
        }
    }
    let found = found?;
    if found > 0 && code[..found].ends_with(b"\\\n") {
        return None;
    }
    Some(found)
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
