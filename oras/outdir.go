package oras

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// ConflictError says that the output directory holds a folder where the
// model has a file, or a file where the model needs a folder. It is found
// before anything is downloaded. It is a local problem, not tampering.
type ConflictError struct {
	// Path is the model's file path that cannot be written.
	Path string
	// At is what is in the way, as a path on this machine.
	At string
	// Found is what At is: "folder" or "regular file".
	Found string
	// Staging is the staging folder a failed pull kept, or "".
	Staging string
}

func (e *ConflictError) Error() string {
	need := "a file"
	if e.Found != "folder" {
		need = "a folder"
	}
	return fmt.Sprintf("local path conflict: %s is a %s, but the model's %q needs %s there", e.At, e.Found, e.Path, need)
}

// ExtraFilesError says that the output directory holds entries that are not
// part of the model: a pull that verified the model would leave files it did
// not verify beside it. Nothing was downloaded.
type ExtraFilesError struct {
	// Dir is the output directory.
	Dir string
	// Names are the entries, relative to Dir, in byte order; a folder
	// ends in "/" and stands for everything below it.
	Names []string
}

func (e *ExtraFilesError) Error() string {
	names := e.Names
	more := ""
	if len(names) > 20 {
		names, more = names[:20], fmt.Sprintf(" and %d more", len(e.Names)-20)
	}
	return fmt.Sprintf("output directory %s holds %d entries that are not part of the model: %s%s", e.Dir, len(e.Names), strings.Join(names, ", "), more)
}

// outputState is what the output directory held when the pull began,
// compared with the paths of the model.
type outputState struct {
	dir     string                 // the output directory, for messages
	entries map[string]fs.FileMode // slash path below dir -> type bits
	claimed map[string]bool        // entries on a model path
	present map[string]bool        // model files found as regular files
}

// scanOutput walks the output directory once, without following links.
func (st *staging) scanOutput() (*outputState, error) {
	o := &outputState{dir: st.osPath(st.out), entries: map[string]fs.FileMode{}, claimed: map[string]bool{}, present: map[string]bool{}}
	fi, err := st.root.Lstat(st.out)
	if errors.Is(err, fs.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("output directory %s: not a directory", o.dir)
	}
	prefix := st.out + "/"
	err = fs.WalkDir(st.root.FS(), st.out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != st.out {
			o.entries[strings.TrimPrefix(p, prefix)] = d.Type()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", o.dir, err)
	}
	return o, nil
}

// claim marks the model path p and the folders on its way as part of the
// model, and checks what is there: folders must be real folders and the
// file, if there, a regular file. Each existing folder on the way is looked
// up once per path, and the walk stops at the first that does not exist.
func (o *outputState) claim(p string) error {
	for i := 0; ; {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			break
		}
		dir := p[:i+j]
		t, ok := o.entries[dir]
		if !ok {
			return nil
		}
		o.claimed[dir] = true
		if !t.IsDir() {
			return unsafeDest(p, o.osPath(dir), t)
		}
		i += j + 1
	}
	t, ok := o.entries[p]
	if !ok {
		return nil
	}
	o.claimed[p] = true
	if !t.IsRegular() {
		return unsafeDest(p, o.osPath(p), t)
	}
	o.present[p] = true
	return nil
}

func (o *outputState) osPath(p string) string { return o.dir + "/" + p }

// extra lists the topmost entries that no model path claimed.
func (o *outputState) extra() []string {
	var names []string
	for p, t := range o.entries {
		if o.claimed[p] {
			continue
		}
		if parent := path.Dir(p); parent != "." && !o.claimed[parent] {
			continue // below an extra folder: that folder is listed
		}
		if t.IsDir() {
			p += "/"
		}
		names = append(names, p)
	}
	sort.Strings(names)
	return names
}

func (o *outputState) extraError() error {
	if names := o.extra(); len(names) > 0 {
		return &ExtraFilesError{Dir: o.dir, Names: names}
	}
	return nil
}

// removeExtra removes what the output directory held that is not part of
// the model; it runs once the model is in place.
func (st *staging) removeExtra(o *outputState) ([]string, error) {
	names := o.extra()
	for _, n := range names {
		if err := st.root.RemoveAll(st.out + "/" + strings.TrimSuffix(n, "/")); err != nil {
			return names, fmt.Errorf("remove %s from the output directory: %w", n, err)
		}
	}
	return names, nil
}
