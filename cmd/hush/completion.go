package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
)

// commandFlags lists a command's flags, for completion scripts.
func commandFlags(c *command) []string {
	fs, _ := c.flagSet(new(env))
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	sort.Strings(out)
	return out
}

func visible() []*command {
	var out []*command
	for _, c := range commands {
		if !c.hidden {
			out = append(out, c)
		}
	}
	return out
}

// nameCommands take a person's name as their argument.
var nameCommands = "history|chat|safety-number|verify|trust|block|unblock"

func runCompletion(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return usagef("give bash, zsh or fish")
	}
	var names []string
	for _, c := range visible() {
		names = append(names, c.name)
	}
	switch args[0] {
	case "bash", "zsh":
		var b strings.Builder
		if args[0] == "zsh" {
			b.WriteString("#compdef hush\nautoload -U +X bashcompinit && bashcompinit\n")
		}
		b.WriteString("# hush completion; source it, e.g. from ~/.bashrc: source <(hush completion bash)\n")
		b.WriteString("_hush() {\n  local cur prev cmd i home\n  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n  prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
		// The names come from the home given on the line, if any; 'hush list
		// --names' never asks for a passphrase.
		b.WriteString("  cmd=\"\"; home=()\n  for ((i=1; i<COMP_CWORD; i++)); do\n    case \"${COMP_WORDS[i]}\" in\n      --home) ((i++)); home=(--home \"${COMP_WORDS[i]}\");;\n      -*) ;;\n      *) cmd=\"${COMP_WORDS[i]}\"; break;;\n    esac\n  done\n")
		fmt.Fprintf(&b, "  if [[ -z \"$cmd\" ]]; then\n    COMPREPLY=($(compgen -W \"--home --json --help %s\" -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
		b.WriteString("  if [[ \"$prev\" == --to ]]; then\n    COMPREPLY=($(compgen -W \"$(hush \"${home[@]}\" list --names 2>/dev/null </dev/null)\" -- \"$cur\"))\n    return\n  fi\n")
		b.WriteString("  case \"$cmd\" in\n")
		for _, c := range visible() {
			words := commandFlags(c)
			switch c.name {
			case "device":
				words = append(words, "make-secret", "list")
			case "passphrase":
				words = append(words, "set", "remove")
			case "completion":
				words = append(words, "bash", "zsh", "fish")
			case "help":
				words = append(words, names...)
			}
			dyn := ""
			if strings.Contains("|"+nameCommands+"|", "|"+c.name+"|") {
				dyn = ` $(hush "${home[@]}" list --names 2>/dev/null </dev/null)`
			}
			fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -W \"%s%s\" -- \"$cur\"));;\n", c.name, strings.Join(words, " "), dyn)
		}
		b.WriteString("  esac\n}\ncomplete -F _hush hush\n")
		fmt.Fprint(e.stdout, b.String())
	case "fish":
		var b strings.Builder
		b.WriteString("# hush completion for fish: hush completion fish > ~/.config/fish/completions/hush.fish\n")
		b.WriteString("complete -c hush -f\n")
		b.WriteString("complete -c hush -l home -r -d 'home folder'\ncomplete -c hush -l json -d 'JSON output'\n")
		for _, c := range visible() {
			fmt.Fprintf(&b, "complete -c hush -n __fish_use_subcommand -a %s -d %q\n", c.name, c.summary)
			for _, f := range commandFlags(c) {
				fmt.Fprintf(&b, "complete -c hush -n '__fish_seen_subcommand_from %s' -l %s\n", c.name, strings.TrimPrefix(f, "--"))
			}
		}
		fmt.Fprintf(&b, "complete -c hush -n '__fish_seen_subcommand_from %s' -a '(hush list --names 2>/dev/null </dev/null)'\n", strings.ReplaceAll(nameCommands, "|", " "))
		b.WriteString("complete -c hush -n '__fish_seen_subcommand_from device' -a 'make-secret list'\n")
		b.WriteString("complete -c hush -n '__fish_seen_subcommand_from passphrase' -a 'set remove'\n")
		fmt.Fprint(e.stdout, b.String())
	default:
		return usagef("no completion for %q: give bash, zsh or fish", args[0])
	}
	return nil
}
