package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageErrors makes every wrong command line exit 2: argument-count errors
// of every command, unknown subcommands and a group command called without
// one. Cobra reports these as plain errors, and a group command without a
// Run would print its help and exit 0.
func usageErrors(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = unknownSubcommand
			c.RunE = func(cmd *cobra.Command, _ []string) error {
				if !cmd.HasParent() {
					return cmd.Help() // modelattest alone: its help
				}
				return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), subcommandNames(cmd))}
			}
			return
		}
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())}
				}
				return nil
			}
		}
	}
	walk(root)
}

// unknownSubcommand refuses arguments to a group command, suggesting the
// subcommand meant.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	} else {
		msg += "; commands: " + subcommandNames(cmd)
	}
	return usageError{fmt.Errorf("%s", msg)}
}

func subcommandNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}
