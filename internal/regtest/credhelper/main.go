// Command credhelper is a Docker credential helper for the tests (the
// pattern of docker-credential-ecr-login and of a credsStore keychain).
//
// get reads a server URL on standard input and answers the user and secret
// stored for it by store, else those of the environment variables
// MODELATTEST_HELPER_USER and MODELATTEST_HELPER_SECRET for the server in
// MODELATTEST_HELPER_SERVER. store and erase keep credentials in the JSON
// file $MODELATTEST_HELPER_STORE (server → {Username, Secret}), so a test
// can see that a login reached the helper and not the config file. Tests
// build it as docker-credential-modelattest-test.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type cred struct {
	ServerURL string `json:",omitempty"`
	Username  string
	Secret    string
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: get|store|erase|list")
	}
	in, _ := io.ReadAll(os.Stdin)
	stored := load()
	switch os.Args[1] {
	case "get":
		server := strings.TrimSpace(string(in))
		if c, ok := stored[server]; ok {
			c.ServerURL = server
			json.NewEncoder(os.Stdout).Encode(c)
			return
		}
		if server != os.Getenv("MODELATTEST_HELPER_SERVER") || server == "" {
			fmt.Println("credentials not found in native keychain")
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(cred{ServerURL: server,
			Username: os.Getenv("MODELATTEST_HELPER_USER"), Secret: os.Getenv("MODELATTEST_HELPER_SECRET")})
	case "store":
		var c cred
		if err := json.Unmarshal(in, &c); err != nil || c.ServerURL == "" {
			fail("store: bad input")
		}
		stored[c.ServerURL] = cred{Username: c.Username, Secret: c.Secret}
		save(stored)
	case "erase":
		delete(stored, strings.TrimSpace(string(in)))
		save(stored)
	case "list":
		out := map[string]string{}
		for s, c := range stored {
			out[s] = c.Username
		}
		json.NewEncoder(os.Stdout).Encode(out)
	default:
		fail("unknown action " + os.Args[1])
	}
}

func load() map[string]cred {
	m := map[string]cred{}
	if f := os.Getenv("MODELATTEST_HELPER_STORE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			json.Unmarshal(b, &m)
		}
	}
	return m
}

func save(m map[string]cred) {
	f := os.Getenv("MODELATTEST_HELPER_STORE")
	if f == "" {
		fail("MODELATTEST_HELPER_STORE is not set")
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}
