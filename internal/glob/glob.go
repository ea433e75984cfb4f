// Package glob turns the reference globs of a policy (match and admission
// scope) into regular expressions, so rule matching and the webhook's CEL
// pre-filter read a glob the same way.
package glob

import (
	"errors"
	"regexp"
	"strings"
)

// Expr is the unanchored regular expression of g: ** matches anything,
// * and ? stay within a path segment, everything else is literal.
func Expr(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// Compile is Expr anchored at both ends; an empty glob is an error.
func Compile(g string) (*regexp.Regexp, error) {
	if g == "" {
		return nil, errors.New("empty pattern")
	}
	return regexp.Compile("^" + Expr(g) + "$")
}
