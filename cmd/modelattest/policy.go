package main

import (
	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/referrers"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policy files",
	}
	cmd.AddCommand(newImportNotationCmd())
	return cmd
}

func newImportNotationCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import-notation DIR",
		Short: "Print the policy equivalent to a notation trust policy and trust store (DIR holds trustpolicy.json and truststore/)",
		Long: `Import-notation reads what notation keeps in its configuration folder
(~/.config/notation): trustpolicy.oci.json or trustpolicy.json, and the trust
store folders truststore/x509/{ca,signingAuthority,tsa}/NAME. Each trust
policy becomes a notation trust anchor and a rule requiring a signature from
it; registry scopes become match patterns; levels become modes (strict and
permissive enforce, audit and skip report without refusing: docs/POLICY.md).
The policy is checked to load before it is printed.`,
		Example: `  modelattest policy import-notation ~/.config/notation > policy.yaml
  modelattest verify --policy policy.yaml registry.example/models/llama:v1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := referrers.ImportNotation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}
