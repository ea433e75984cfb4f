package integration

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// commandArgs is every command of the CLI with the arguments it needs: "0",
// "1", "2" exactly, "1+" at least one, "group" a subcommand.
// TestUsageExitCodeEveryCommand fails for a command missing here: a new
// command must say how its command line can be wrong. (Commands listed but
// not built yet are skipped.)
var commandArgs = map[string]string{
	"attest": "1", "copy": "2", "discover": "1", "inspect": "1", "keygen": "0", "login": "1", "logout": "1",
	"pack": "1", "pull": "1", "push": "2", "sign": "1", "verify": "1", "verify-local": "1", "audit": "1+",
	"registry serve": "0", "policy import-notation": "1", "runtime verify": "1", "runtime load": "1", "runtime": "group",
	"runtime broker": "group", "runtime broker serve": "0",
	"admission serve": "0", "admission manifests": "0", "admission certs": "0",
	"completion bash": "0", "completion zsh": "0", "completion fish": "0", "completion powershell": "0",
	"help":     "0",
	"registry": "group", "policy": "group", "completion": "group", "admission": "group",
}

// commands lists the CLI's commands as cobra's completion protocol gives
// them, walking every group.
func commands(t *testing.T, path []string) []string {
	t.Helper()
	out, err := exec.Command(modelattest, append(append([]string{"__complete"}, path...), "")...).Output()
	if err != nil {
		t.Fatalf("__complete %v: %v", path, err)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(l, "\t")
		if name == "" || strings.HasPrefix(name, ":") || strings.HasPrefix(name, "-") {
			continue
		}
		full := append(slices.Clone(path), name)
		found = append(found, strings.Join(full, " "))
		if name != "help" {
			found = append(found, commands(t, full)...)
		}
	}
	return found
}

// flagsOf lists the flags a command takes, through the same protocol.
func flagsOf(t *testing.T, cmd []string) map[string]bool {
	out, _ := exec.Command(modelattest, append(append([]string{"__complete"}, cmd...), "--")...).Output()
	flags := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(l, "\t"); strings.HasPrefix(name, "--") {
			flags[name] = true
		}
	}
	return flags
}

// TestUsageExitCodeEveryCommand: every wrong command line of every
// command exits 2 — an unknown flag, too many or missing arguments, a bad
// flag value, an unknown --format, an unknown subcommand or none — through
// the built binary. Commands come from cobra itself, so a new command
// cannot be left out.
func TestUsageExitCodeEveryCommand(t *testing.T) {
	found := commands(t, nil)
	for _, c := range found {
		if _, ok := commandArgs[c]; !ok {
			t.Errorf("command %q is not in commandArgs: add it with the number of arguments it needs", c)
		}
	}
	if len(found) < 20 {
		t.Fatalf("found only %v", found)
	}
	type line struct {
		name string
		args []string
	}
	for _, c := range found {
		spec, ok := commandArgs[c]
		if !ok {
			continue
		}
		cmd := strings.Fields(c)
		dummies := func(n int) []string { return slices.Repeat([]string{"x"}, n) }
		need, _ := strconv.Atoi(strings.TrimSuffix(spec, "+"))
		var lines []line
		switch {
		case spec == "group":
			lines = append(lines, line{"no subcommand", cmd}, line{"unknown subcommand", append(slices.Clone(cmd), "bogus")})
		default:
			lines = append(lines, line{"unknown flag", append(append(slices.Clone(cmd), "--no-such-flag"), dummies(need)...)})
			if !strings.HasSuffix(spec, "+") {
				lines = append(lines, line{"too many arguments", append(slices.Clone(cmd), dummies(need+3)...)})
			}
			if need > 0 {
				lines = append(lines, line{"missing argument", slices.Clone(cmd)})
			}
			flags := flagsOf(t, cmd)
			if flags["--format"] {
				lines = append(lines, line{"unknown format", append(append(slices.Clone(cmd), "--format", "yaml"), dummies(need)...)})
			}
			if flags["--concurrency"] {
				lines = append(lines, line{"bad flag value", append(append(slices.Clone(cmd), "--concurrency", "many"), dummies(need)...)})
			}
		}
		if c == "help" {
			lines = lines[:1] // help takes any command path as arguments
		}
		for _, l := range lines {
			t.Run(c+"/"+l.name, func(t *testing.T) {
				out, code := maCode(t, l.args...)
				if code != 2 {
					t.Fatalf("modelattest %s: exit %d, want 2\n%s", strings.Join(l.args, " "), code, out)
				}
			})
		}
	}
	t.Run("unknown command", func(t *testing.T) {
		if out, code := maCode(t, "pul", "x"); code != 2 || !strings.Contains(out, "did you mean pull") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("include matching nothing", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		ma(t, "pack", "--no-progress", regtest.ModelDir(t, 64), "-o", layout+":v1")
		out, code := maCode(t, "pull", "--oci-layout", "--insecure-skip-verify", "-o", filepath.Join(t.TempDir(), "o"), "--include", "nothing*", layout+":v1")
		if code != 2 || !strings.Contains(out, "matches no file") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}
