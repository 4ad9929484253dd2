package devicefilter

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// compileMatch compiles the pattern of -match / -notMatch.
//
// Entra evaluates -match with .NET regular expressions; Verity uses Go's
// regexp (RE2), which runs in time linear in the input and so cannot be made
// to hang on a hostile pattern. Matching is case-insensitive ("Regex and
// string operations aren't case sensitive") and unanchored, as .NET's
// Regex.IsMatch is: "^Da.*" matches "David", ".*vid" does not match "Da".
//
// Patterns that RE2 does not support are rejected with the reason:
// lookahead and lookbehind ((?=, (?!, (?<=, (?<!), backreferences (\1,
// \k<name>), atomic groups ((?>), conditionals ((?(), inline comments ((?#),
// the x and n options, and the escapes \G, \Z, \e, \cX, \uXXXX (write
// \x{XXXX}). Patterns that RE2 accepts but would read differently from .NET
// are rejected too: character class subtraction ([a-z-[aeiou]]), POSIX
// classes inside brackets ([[:alpha:]], literal characters in .NET) and \N
// escapes with a digit 1-9 (a backreference or octal code in .NET).
//
// Differences that remain, on patterns both accept:
//   - \d, \w, \s and \b are ASCII-only in RE2 and Unicode-aware in .NET
//     (\d does not match "٣"); write \p{Nd} or \p{L} for Unicode classes.
//   - $ without (?m) matches only at the very end in RE2; .NET also matches
//     before a final "\n".
//   - Case-insensitive matching uses Unicode simple case folding; .NET maps
//     case by culture-invariant rules, which differ for a few characters
//     (U+212A KELVIN SIGN matches "k" here).
//   - RE2 also accepts a few forms .NET rejects: (?U), \Q…\E, \pL without
//     braces, escaped punctuation such as \_. A rule using them is valid in
//     Verity but would not be in Entra.
//   - Repetition counts above 1000 ({1001}) are rejected by RE2.
func compileMatch(pattern string) (*regexp.Regexp, error) {
	if err := checkDotNetOnly(pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile("(?i)" + pattern)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			se.Expr = strings.TrimPrefix(se.Expr, "(?i)")
			switch se.Code {
			case syntax.ErrInvalidPerlOp, syntax.ErrInvalidEscape, syntax.ErrInvalidNamedCapture:
				// Most likely a .NET construct RE2 lacks.
				return nil, fmt.Errorf("%s: `%s` (Verity uses RE2 regular expressions: no lookaround, backreferences, atomic groups or conditionals)", se.Code, se.Expr)
			}
			return nil, fmt.Errorf("%s: `%s`", se.Code, se.Expr)
		}
		return nil, err
	}
	return re, nil
}

// checkDotNetOnly rejects constructs RE2 would accept with a meaning other
// than .NET's.
func checkDotNetOnly(p string) error {
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 < len(p) && '1' <= p[i+1] && p[i+1] <= '9' {
				return fmt.Errorf("\\%c is a backreference or octal escape in .NET and is not supported; write a character as \\x{…}", p[i+1])
			}
			i++ // skip the escaped character
		case !inClass && c == '[':
			inClass = true
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(p) && p[i+1] == '^' {
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				i++
			}
		case inClass && c == '[' && i+1 < len(p) && p[i+1] == ':':
			name := p[i:]
			if end := strings.Index(name, ":]"); end >= 0 {
				name = name[:end+2]
			}
			return fmt.Errorf("POSIX class %s is not supported (.NET reads it as literal characters); use \\p{…} or a range", name)
		case inClass && c == '-' && i+1 < len(p) && p[i+1] == '[':
			return fmt.Errorf("character class subtraction (-[…]) is not supported")
		case inClass && c == ']':
			inClass = false
		}
	}
	return nil
}
