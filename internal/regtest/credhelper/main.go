// Command credhelper is a Docker credential helper for the tests (the
// pattern of docker-credential-ecr-login): `get` reads a server URL on
// standard input and answers the user and secret from the environment
// variables MODELATTEST_HELPER_USER and MODELATTEST_HELPER_SECRET, for the
// server in MODELATTEST_HELPER_SERVER only. Tests build it as
// docker-credential-modelattest-test.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "get" {
		fmt.Fprintln(os.Stderr, "only get is supported")
		os.Exit(1)
	}
	in, _ := io.ReadAll(os.Stdin)
	server := strings.TrimSpace(string(in))
	if server != os.Getenv("MODELATTEST_HELPER_SERVER") {
		fmt.Println("credentials not found in native keychain")
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{
		"ServerURL": server,
		"Username":  os.Getenv("MODELATTEST_HELPER_USER"),
		"Secret":    os.Getenv("MODELATTEST_HELPER_SECRET"),
	})
}
