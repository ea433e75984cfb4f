package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/oras"
)

func newLoginCmd() *cobra.Command {
	var opts oras.RemoteOptions
	var passwordStdin bool
	var of outputFlags
	cmd := &cobra.Command{
		Use:   "login REGISTRY",
		Short: "Log in to a registry: check the credentials and store them as docker login and oras login do",
		Long: `Login checks a user name and password (or identity token) against the
registry, then stores them in the Docker config (~/.docker/config.json, or
$DOCKER_CONFIG, or --registry-config): through the credential helper it names
for this registry (credHelpers), else its credsStore, else the platform's
keychain helper when one is installed, else in the file itself (base64, not
encrypted, as docker does). Every modelattest command, docker, oras and crane
read them from there; docker login and oras login work for modelattest too.

Without --password or --password-stdin the password is asked for on the
terminal.`,
		Example: `  modelattest login registry.example -u alice
  echo "$TOKEN" | modelattest login ghcr.io -u alice --password-stdin
  modelattest login --plain-http localhost:5000 -u test --password-stdin < password.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			fd, tty := terminal(cmd)
			if passwordStdin {
				if opts.Password != "" {
					return usageError{fmt.Errorf("--password and --password-stdin are exclusive")}
				}
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("read password: %w", err)
				}
				opts.Password = strings.TrimRight(line, "\r\n")
			}
			if opts.Username == "" && tty && !passwordStdin {
				u, err := readLine(cmd.InOrStdin(), cmd.ErrOrStderr(), "Username: ")
				if err != nil {
					return err
				}
				opts.Username = u
			}
			if opts.Password == "" {
				if !tty || passwordStdin {
					return usageError{fmt.Errorf("login needs a password: --password-stdin, or a terminal to ask on")}
				}
				p, err := readSecret(cmd.Context(), fd, cmd.ErrOrStderr(), "Password: ")
				if err != nil {
					return err
				}
				opts.Password = string(p)
			}
			res, err := oras.Login(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Login Succeeded: %s (stored in the %s)\n", res.Registry, res.Store)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Username, "username", "u", "", "user name (asked for on a terminal when not given)")
	f.StringVarP(&opts.Password, "password", "p", "", "password or identity token (visible to other users of this machine: prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&opts.RegistryConfig, "registry-config", "", "Docker config file to store the credentials through (default: ~/.docker/config.json)")
	f.BoolVar(&opts.PlainHTTP, "plain-http", false, "talk HTTP instead of HTTPS")
	f.BoolVar(&opts.Insecure, "insecure", false, "do not verify the registry's TLS certificate")
	f.StringVar(&opts.CAFile, "ca-file", "", "PEM file of extra trusted CA certificates")
	f.StringVar(&of.format, "format", "text", "output format: text, json")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	var opts oras.RemoteOptions
	var of outputFlags
	cmd := &cobra.Command{
		Use:     "logout REGISTRY",
		Short:   "Remove a registry's stored credentials (from its credential helper or the Docker config)",
		Example: `  modelattest logout registry.example`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			res, err := oras.Logout(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed the credentials for %s (from the %s)\n", res.Registry, res.Store)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.RegistryConfig, "registry-config", "", "Docker config file (default: ~/.docker/config.json)")
	cmd.Flags().StringVar(&of.format, "format", "text", "output format: text, json")
	return cmd
}
