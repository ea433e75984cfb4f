package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/modelattest/modelattest/referrers"
)

// errNoTerminal: a secret is needed, its variable is unset and there is no
// terminal to ask on.
var errNoTerminal = errors.New("standard input is not a terminal")

// terminal returns standard input's descriptor when it is a terminal.
func terminal(cmd *cobra.Command) (int, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// readSecret asks for a secret on the terminal fd with echo off. Ctrl-C
// while it waits restores the terminal and returns ctx's error.
func readSecret(ctx context.Context, fd int, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	type answer struct {
		b   []byte
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- answer{b, err}
	}()
	select {
	case a := <-ch:
		fmt.Fprintln(w)
		return a.b, a.err
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		fmt.Fprintln(w)
		return nil, ctx.Err()
	}
}

// keyPassword supplies the password of an encrypted signing key as cosign
// does: $COSIGN_PASSWORD when set (even empty), else asked once on the
// terminal; with neither, an error that says so (never "wrong password").
func keyPassword(cmd *cobra.Command) referrers.PasswordFunc {
	return func() ([]byte, error) {
		if p, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
			return []byte(p), nil
		}
		fd, ok := terminal(cmd)
		if !ok {
			return nil, usageError{fmt.Errorf("$COSIGN_PASSWORD is unset and %w to ask for the key's password: set COSIGN_PASSWORD (COSIGN_PASSWORD= for an empty one)", errNoTerminal)}
		}
		return readSecret(cmd.Context(), fd, cmd.ErrOrStderr(), "Enter password for private key: ")
	}
}

// newKeyPassword is the password to encrypt a new key with: $COSIGN_PASSWORD
// when set, else asked twice on the terminal.
func newKeyPassword(cmd *cobra.Command) ([]byte, error) {
	if p, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(p), nil
	}
	fd, ok := terminal(cmd)
	if !ok {
		return nil, usageError{fmt.Errorf("$COSIGN_PASSWORD is unset and %w to ask for a password for the new key: set COSIGN_PASSWORD (COSIGN_PASSWORD= for no password)", errNoTerminal)}
	}
	p1, err := readSecret(cmd.Context(), fd, cmd.ErrOrStderr(), "Enter password for private key: ")
	if err != nil {
		return nil, err
	}
	p2, err := readSecret(cmd.Context(), fd, cmd.ErrOrStderr(), "Enter password for private key again: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p1, p2) {
		return nil, errors.New("the two passwords differ; nothing written")
	}
	return p1, nil
}

// readLine asks for a line (a user name) on the terminal, with echo. It
// reads a byte at a time so that nothing after the line is consumed.
func readLine(r io.Reader, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}
