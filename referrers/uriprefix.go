package referrers

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// parsePrefix reads a uriPrefix of a policy: an absolute URL with no
// userinfo, query or fragment, and a path with no dot segment or encoded
// slash.
func parsePrefix(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Opaque != "" {
		return nil, errors.New("want an absolute URL such as s3://bucket/approved/")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, errors.New("a prefix has no user, query or fragment")
	}
	if err := checkPath(u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkPath refuses a path whose meaning depends on who resolves it: dot
// segments ("..", "."), also percent-encoded once or twice, encoded slashes
// and backslashes.
func checkPath(u *url.URL) error {
	esc := strings.ToLower(u.EscapedPath())
	if strings.Contains(esc, "%2f") || strings.Contains(esc, "%5c") || strings.Contains(u.Path, `\`) {
		return errors.New("the path has an encoded slash or a backslash")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." || strings.Contains(strings.ToLower(seg), "%2e") {
			return fmt.Errorf("the path has a dot segment %q", seg)
		}
	}
	return nil
}

// underPrefix reports whether uri lies under prefix: same scheme and host
// (compared case-blind, as URLs define them), no userinfo, a path with no
// dot segment, and the prefix's path, as written (percent-encoding
// included), a whole-segment prefix of it. The
// error says why a URI that names the prefix's place was refused.
func underPrefix(uri string, prefix *url.URL) (bool, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Opaque != "" {
		return false, nil
	}
	if !strings.EqualFold(u.Scheme, prefix.Scheme) || !strings.EqualFold(u.Host, prefix.Host) || u.User != nil {
		return false, nil
	}
	if err := checkPath(u); err != nil {
		return false, fmt.Errorf("resolved dependency %q refused: %w", uri, err)
	}
	// Paths compare as written: an object store reads "appr%6fved" as
	// those bytes, not as "approved".
	p, up := prefix.EscapedPath(), u.EscapedPath()
	if strings.HasSuffix(p, "/") {
		return strings.HasPrefix(up, p), nil
	}
	return up == p || strings.HasPrefix(up, p+"/"), nil
}
