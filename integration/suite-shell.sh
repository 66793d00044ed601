# `nsvpn shell` under bash and zsh: the profile in the prompt, the user's own
# prompt and rc files kept (and the system's), nothing left once the shell
# exits. Sourced by suite.sh while alpha is up. The users, their homes (in
# the sandbox's /run) and the marks in /etc/bash.bashrc and /etc/zsh/zshrc
# (the sandbox's /etc overlay) are removed at the end.

echo "# shell: the profile in the prompt; the user's own prompt and rc files kept"
homes=/run/shell-homes
mkdir -p "$homes"
cp /etc/bash.bashrc /run/bash.bashrc.saved; cp /etc/zsh/zshrc /run/zshrc.saved
echo 'SYSTEM_RC=read' >> /etc/bash.bashrc
echo 'SYSTEM_RC=read' >> /etc/zsh/zshrc
useradd -M -d "$homes/erin" -s /bin/bash -U erin   # bash, ~/.bashrc
useradd -M -d "$homes/zara" -s "$(command -v zsh)" -U zara   # zsh, ZDOTDIR set in ~/.zshenv
useradd -M -d "$homes/zeke" -s "$(command -v zsh)" -U zeke   # zsh, ~/.zshrc
mkdir -p "$homes/erin" "$homes/zara/.config/zsh" "$homes/zeke"
printf 'PS1='"'"'erin-rc\\$ '"'"'\nOWN_RC=read\n' > "$homes/erin/.bashrc"
printf 'export ZDOTDIR=$HOME/.config/zsh\nOWN_ENV=read\n' > "$homes/zara/.zshenv"
printf 'PROMPT="zara-zrc%%# "\nOWN_RC=read\n' > "$homes/zara/.config/zsh/.zshrc"
printf 'OWN_ENV=read\n' > "$homes/zeke/.zshenv"
printf 'PROMPT="zeke-zrc%%# "\nOWN_RC=read\n' > "$homes/zeke/.zshrc"
for u in erin zara zeke; do chown -R "$u:" "$homes/$u"; chmod 700 "$homes/$u"; done
ask='echo "rc: ${OWN_ENV-}/${OWN_RC-} system: ${SYSTEM_RC-} zdotdir: ${ZDOTDIR-unset} profile: $NSVPN_PROFILE"; find /etc/nsvpn-shell -exec stat -c "%U %a %n" {} + | LC_ALL=C sort -k3; touch /etc/nsvpn-shell/x'
# interactive USER: `nsvpn shell alpha` as the sudo user USER on a terminal
# (script's pty), fed $ask then exit; what the terminal showed, without the
# terminal's carriage returns and escape sequences.
interactive() {
  printf '%s\nexit\n' "$ask" | SUDO_UID=$(id -u "$1") SUDO_GID=$(id -g "$1") SUDO_USER=$1 \
    script -qec "nsvpn shell alpha" /dev/null 2>&1 | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'
}
interactive erin > /run/shell.out
grep -qF '(alpha) erin-rc$ ' /run/shell.out && ok "bash: the prompt is (alpha) and then erin's own, from her ~/.bashrc" \
  || { fail "bash: the prompt is (alpha) and then erin's own, from her ~/.bashrc"; cat -v /run/shell.out | tail -n 12; }
expect "bash: erin's ~/.bashrc and /etc/bash.bashrc were read" "rc: /read system: read zdotdir: unset profile: alpha" grep '^rc: ' /run/shell.out
expect "bash: the rc file is root's, mode 644, on a read-only /etc" "root 755 /etc/nsvpn-shell
root 644 /etc/nsvpn-shell/bashrc
touch: cannot touch '/etc/nsvpn-shell/x': Read-only file system" grep -e '^root ' -e '^touch: ' /run/shell.out
interactive zara > /run/shell.out
grep -qF '(alpha) zara-zrc% ' /run/shell.out && ok "zsh: the prompt is (alpha) and then zara's own, from the .zshrc in the ZDOTDIR her ~/.zshenv sets" \
  || { fail "zsh: the prompt is (alpha) and then zara's own, from the .zshrc in the ZDOTDIR her ~/.zshenv sets"; cat -v /run/shell.out | tail -n 12; }
expect "zsh: zara's .zshenv, .zshrc and /etc/zsh/zshrc were read; her ZDOTDIR is hers again" \
  "rc: read/read system: read zdotdir: $homes/zara/.config/zsh profile: alpha" grep '^rc: ' /run/shell.out
expect "zsh: the rc files are root's, mode 644, on a read-only /etc" "root 755 /etc/nsvpn-shell
root 644 /etc/nsvpn-shell/.zshenv
root 644 /etc/nsvpn-shell/.zshrc
touch: cannot touch '/etc/nsvpn-shell/x': Read-only file system" grep -e '^root ' -e '^touch: ' /run/shell.out
interactive zeke > /run/shell.out
grep -qF '(alpha) zeke-zrc% ' /run/shell.out && ok "zsh: the prompt is (alpha) and then zeke's own, from his ~/.zshrc" \
  || { fail "zsh: the prompt is (alpha) and then zeke's own, from his ~/.zshrc"; cat -v /run/shell.out | tail -n 12; }
expect "zsh: zeke's ~/.zshenv and ~/.zshrc were read; ZDOTDIR is unset again, as he had it" \
  "rc: read/read system: read zdotdir: unset profile: alpha" grep '^rc: ' /run/shell.out
expect "zsh without a terminal (a script on stdin) reads zara's .zshenv, with her ZDOTDIR" "read $homes/zara/.config/zsh" \
  bash -c "echo 'echo \$OWN_ENV \$ZDOTDIR' | SUDO_UID=$(id -u zara) SUDO_GID=$(id -g zara) SUDO_USER=zara nsvpn shell alpha"
expect "nothing of the shells is left: no /etc/nsvpn-shell on the host, no process in their mount namespaces" "" \
  bash -c "ls -d /etc/nsvpn-shell 2>/dev/null; grep -l nsvpn-etc /proc/[0-9]*/mountinfo 2>/dev/null"
status_is "a command's exec gets no prompt files" 2 as_user nsvpn exec alpha -- ls /etc/nsvpn-shell
cp /run/bash.bashrc.saved /etc/bash.bashrc; cp /run/zshrc.saved /etc/zsh/zshrc
rm -f /run/bash.bashrc.saved /run/zshrc.saved /run/shell.out
for u in erin zara zeke; do userdel "$u"; groupdel "$u" 2>/dev/null; done
rm -rf "$homes"
