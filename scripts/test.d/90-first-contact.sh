#!/usr/bin/env bash
# What a new user does, on a fresh clone of the committed HEAD, with a stock
# Debian PATH (Debian's own /usr/bin/python3 first; no pyenv, no cargo):
#   as root:   bash scripts/demo.sh                      (the README's main job)
#   as an unprivileged user with RLIMIT_MEMLOCK 8 MiB (Debian's default), in
#   that user's own clone, with the packages already installed:
#     bash scripts/demo.sh
#     a venv, pip install <clone>, python examples/hello.py
#     cmake --install into a user prefix; examples/hello.c through pkg-config
#       (shared, and -static) and through the find_package consumer
#       (examples/consumer-cmake), each run without LD_LIBRARY_PATH
#     a Rust crate outside the repository depending on bindings/rust/labyrinth
#       by path, built and run (built as root when the user cannot reach a
#       Rust toolchain: rustup installs it under root's home)
#   and scripts/check-readme-examples.sh on the clone's README.
# Every step must pass; one that cannot run here says why and is skipped
# (exit 77 from the step). Needs root (it creates the user
# $LABYRINTH_FIRST_CONTACT_USER, default labyrinth-newuser, with useradd,
# and removes it at the end when it created it).
# LABYRINTH_FIRST_CONTACT_MEMLOCK_KB (default 8192) sets the user's limit.
# About 6 minutes on 2 cores, most of it pip compiling the extension.
set -uo pipefail
cd "$LABYRINTH_ROOT"
user="${LABYRINTH_FIRST_CONTACT_USER:-labyrinth-newuser}"
memlock_kb="${LABYRINTH_FIRST_CONTACT_MEMLOCK_KB:-8192}"
debian_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "$(id -u)" != 0 ]; then
  echo "90-first-contact: SKIP: needs root (it runs the main job as root and creates a user)"; exit 77
fi
for tool in git useradd setpriv prlimit; do
  command -v "$tool" >/dev/null || { echo "90-first-contact: SKIP: $tool is not installed"; exit 77; }
done
if [ "$(PATH=$debian_path command -v python3)" != /usr/bin/python3 ]; then
  echo "90-first-contact: python3 on a stock PATH is $(PATH=$debian_path command -v python3), not /usr/bin/python3"; exit 1
fi
. scripts/lib.sh
apt_need python3-venv || exit 1  # Debian's python3 makes no venv without it
created_user=""
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user" || exit 1
  created_user=$user
fi
home=$(getent passwd "$user" | cut -d: -f6)

no_limit=""
if ! prlimit --memlock=$((memlock_kb * 1024)):$((memlock_kb * 1024)) true 2>/dev/null; then
  no_limit="RLIMIT_MEMLOCK cannot be set to $memlock_kb KiB here (hard limit $(ulimit -H -l) KiB; raising it needs CAP_SYS_RESOURCE)"
fi

work=$(mktemp -d /tmp/labyrinth-first-contact.XXXXXX)
# The stage leaves the machine as it found it: its temporary folder goes, and
# so does the user account (with its home) when this run created it.
cleanup() {
  rm -rf "$work"
  [ -z "$created_user" ] || userdel --remove "$created_user" 2>/dev/null || true
}
trap cleanup EXIT
head=$(git rev-parse HEAD)
passed=(); failed=(); skipped=()

# step NAME COMMAND...: runs it, records passed / skipped (77) / failed.
step() {
  local name=$1; shift
  echo "--- $name"
  local t0 rc; t0=$(date +%s)
  "$@"; rc=$?
  case $rc in
    0) passed+=("$name"); echo "--- $name: passed ($(( $(date +%s) - t0 ))s)";;
    77) skipped+=("$name"); echo "--- $name: skipped ($(( $(date +%s) - t0 ))s)";;
    *) failed+=("$name"); echo "--- $name: FAILED rc=$rc ($(( $(date +%s) - t0 ))s)";;
  esac
}

# as_user SCRIPT: runs SCRIPT with bash as $user in $home/first-contact, with
# the memlock limit, no capabilities, and an environment of its own (a stock
# PATH, no LD_LIBRARY_PATH; pip's and the proxy's settings passed on).
as_user() {
  if [ -n "$no_limit" ]; then echo "SKIP: $no_limit"; return 77; fi
  local envs=(HOME="$home" USER="$user" LOGNAME="$user" PATH="$debian_path" LANG=C.UTF-8)
  local v
  for v in $(compgen -e | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|SSL_CERT_FILE)$'); do
    envs+=("$v=${!v}")
  done
  prlimit --memlock=$((memlock_kb * 1024)):$((memlock_kb * 1024)) \
    setpriv --reuid="$user" --regid="$user" --init-groups --inh-caps=-all \
    env -i "${envs[@]}" bash -c "set -euo pipefail; cd '$home/first-contact'; $1"
}

# make_crate DIR LABYRINTH_CRATE: a binary crate in DIR depending on the safe
# crate by path; it writes into a page of a 16 MiB pool and prints the stats.
make_crate() {
  mkdir -p "$1/src"
  printf '[package]\nname = "hello-labyrinth"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nlabyrinth = { path = "%s" }\n' \
    "$2" > "$1/Cargo.toml"
  cat > "$1/src/main.rs" <<'RSEOF'
fn main() -> Result<(), labyrinth::Error> {
    let pool = labyrinth::Pool::new(labyrinth::PoolOptions::new(16 << 20))?;
    let mut page = pool.alloc_page()?;
    page[..11].copy_from_slice(b"hello, page");
    println!("{} from Rust", String::from_utf8_lossy(&page[..11]));
    drop(page);
    let stats = pool.stats()?;
    println!("{} of {} pages free", stats.free_pages, stats.total_pages);
    Ok(())
}
RSEOF
}

# The Rust step: built by the user where the user has a Rust toolchain
# (~/.cargo/bin), else by root (a fresh crate, path dependency on root's
# clone) and run by the user; either way no LD_LIBRARY_PATH, no build tree.
rust_crate() {
  if as_user 'PATH="$HOME/.cargo/bin:$PATH" command -v cargo' >/dev/null 2>&1; then
    echo "built and run by $user"
    as_user "mkdir -p hello-rs && cd hello-rs && $(declare -f make_crate); make_crate . \"\$HOME/first-contact/labyrinth/bindings/rust/labyrinth\"
      PATH=\"\$HOME/.cargo/bin:\$PATH\" cargo run -q"
    return
  fi
  local cargo_bin; cargo_bin=$(PATH="$HOME/.cargo/bin:$PATH" command -v cargo) ||
    { echo "SKIP: no Rust toolchain for $user or root (install it with rustup)"; return 77; }
  echo "$user has no Rust toolchain: built by root ($cargo_bin), run by $user"
  make_crate "$work/hello-rs" "$work/root-clone/bindings/rust/labyrinth"
  env -i HOME="$HOME" PATH="$(dirname "$cargo_bin"):$debian_path" LANG=C.UTF-8 \
    bash -c "cd '$work/hello-rs' && cargo build -q" || return 1
  install -o "$user" -m 755 "$work/hello-rs/target/debug/hello-labyrinth" "$home/first-contact/hello-rs"
  as_user "./hello-rs"
}

# 1. Root: a fresh clone of HEAD, the main job.
git clone -q --no-checkout "$LABYRINTH_ROOT" "$work/root-clone" && git -C "$work/root-clone" checkout -q "$head" || exit 1
step "root: bash scripts/demo.sh" env -i HOME="$HOME" PATH="$debian_path" LANG=C.UTF-8 \
  bash -c "cd '$work/root-clone' && bash scripts/demo.sh"
step "README examples match the files" bash "$work/root-clone/scripts/check-readme-examples.sh"

# 2. The user's own clone (from a bare copy the user owns: git refuses to
#    serve another user's repository).
git clone -q --bare "$work/root-clone" "$work/origin.git" && chown -R "$user:" "$work/origin.git" && chmod 755 "$work" || exit 1
rm -rf "$home/first-contact"
install -d -o "$user" -g "$(id -gn "$user")" "$home/first-contact"
step "user: git clone" as_user "git clone -q '$work/origin.git' labyrinth && git -C labyrinth checkout -q $head
  echo \"memlock limit: \$(ulimit -l) KiB, uid \$(id -u), python3: \$(command -v python3)\""
step "user: bash scripts/demo.sh" as_user "cd labyrinth && bash scripts/demo.sh"
step "user: venv, pip install, examples/hello.py" as_user "
  python3 -m venv venv
  venv/bin/python -m pip install -q --disable-pip-version-check ./labyrinth
  venv/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -i labyrinth
  venv/bin/python labyrinth/examples/hello.py"
# A user prefix, ~/first-contact/prefix (fresh each run, unlike ~/.local).
step "user: install to a user prefix, hello.c through pkg-config" as_user "
  cmake -S labyrinth -B labyrinth/build -G Ninja -DLABYRINTH_BUILD_TESTS=OFF >/dev/null
  cmake --build labyrinth/build -j$(nproc) >/dev/null
  cmake --install labyrinth/build --prefix \"\$PWD/prefix\" >/dev/null
  export PKG_CONFIG_PATH=\$(dirname \"\$(find prefix -name labyrinth.pc | head -1)\")
  cc -Wall -Wextra -Werror labyrinth/examples/hello.c -o hello-pc \$(pkg-config --cflags --libs labyrinth)
  ./hello-pc
  cc -static labyrinth/examples/hello.c -o hello-static \$(pkg-config --static --cflags --libs labyrinth)
  ./hello-static"
step "user: hello.c through find_package (examples/consumer-cmake)" as_user "
  cmake -S labyrinth/examples/consumer-cmake -B hello-cmake -DCMAKE_PREFIX_PATH=\"\$PWD/prefix\" >/dev/null
  cmake --build hello-cmake >/dev/null
  hello-cmake/hello"
step "Rust crate outside the repository, path dependency" rust_crate

exit_code=0
echo "90-first-contact: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ "${#skipped[@]}" -eq 0 ] || echo "skipped: ${skipped[*]}"
[ "${#failed[@]}" -eq 0 ] || { echo "failed: ${failed[*]}"; exit_code=1; }
exit $exit_code
