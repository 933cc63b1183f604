#!/usr/bin/env bash
# Install (or reuse) an Asterisk >= 20 for Standardiste.
#
# Order of preference:
#   1. ASTERISK_BIN already set and working, or an `asterisk` >= 20 on PATH;
#   2. a cached build under $STANDARDISTE_CACHE/asterisk-<version>;
#   3. a fresh build of Debian's `asterisk` source package (unstable suite, Asterisk 22 LTS,
#      Debian's patches applied, pjproject bundled) into that cache.
#
# It writes $STANDARDISTE_CACHE/asterisk.env (ASTERISK_BIN, ASTERISK_MODDIR, ASTERISK_VERSION),
# which the Makefile, the tests and `make run` read. A second run costs a few seconds.
set -euo pipefail

CACHE="${STANDARDISTE_CACHE:-/var/cache/standardiste}"
SUITE="${ASTERISK_DEBIAN_SUITE:-unstable}"
# Debian source version to build; empty means whatever 22.x the suite carries now.
WANT_VERSION="${ASTERISK_DEBIAN_VERSION:-}"
JOBS="${JOBS:-$(nproc)}"
ENV_FILE="$CACHE/asterisk.env"

# Modules built (menuselect names). Changing this list changes RECIPE, which forces a rebuild.
mods=(
  # PJSIP stack: trunk, registration, auth, NAT, messaging
  res_pjproject res_sorcery_astdb res_sorcery_config res_sorcery_memory res_sorcery_realtime
  res_sorcery_memory_cache res_pjsip res_pjsip_session res_pjsip_authenticator_digest
  res_pjsip_outbound_authenticator_digest res_pjsip_outbound_registration res_pjsip_registrar
  res_pjsip_endpoint_identifier_ip res_pjsip_endpoint_identifier_user res_pjsip_nat
  res_pjsip_sdp_rtp res_pjsip_caller_id res_pjsip_dtmf_info res_pjsip_rfc3326 res_pjsip_diversion
  res_pjsip_messaging res_pjsip_logger res_pjsip_acl res_pjsip_dialog_info_body_generator
  res_pjsip_header_funcs res_pjsip_refer res_pjsip_pubsub res_pjsip_exten_state res_pjsip_mwi
  res_pjsip_rfc3329 res_pjsip_path res_pjsip_outbound_publish res_pjsip_transport_websocket
  res_pjsip_send_to_voicemail res_pjsip_one_touch_record_info res_pjsip_pidf_body_generator
  res_pjsip_xpidf_body_generator res_pjsip_pidf_eyebeam_body_generator res_pjsip_pidf_digium_body_supplement
  res_pjsip_config_wizard res_pjsip_geolocation res_pjsip_stir_shaken res_pjsip_t38
  res_pjsip_notify res_pjsip_empty_info res_pjsip_sips_contact res_pjsip_history
  res_geolocation res_statsd res_rtp_asterisk res_srtp res_crypto res_http_websocket
  res_websocket_client res_stir_shaken res_timing_timerfd res_timing_pthread
  chan_pjsip func_pjsip_endpoint func_pjsip_aor func_pjsip_contact
  # ARI and Stasis
  res_ari res_ari_applications res_ari_asterisk res_ari_bridges res_ari_channels res_ari_device_states
  res_ari_endpoints res_ari_events res_ari_model res_ari_playbacks res_ari_recordings res_ari_sounds
  res_stasis res_stasis_answer res_stasis_broadcast res_stasis_device_state res_stasis_mailbox
  res_stasis_playback res_stasis_recording res_stasis_snoop res_stasis_test res_mwi_external
  res_mwi_external_ami res_audiosocket chan_audiosocket res_musiconhold
  # media, bridges, apps
  chan_rtp chan_bridge_media chan_audiosocket bridge_simple bridge_softmix bridge_native_rtp
  bridge_holding bridge_builtin_features bridge_builtin_interval_features res_features
  app_dial app_record app_playback app_stasis app_echo app_mixmonitor app_verbose app_exec
  app_senddtmf app_read app_waitforsilence app_system app_transfer app_sendtext
  app_stack app_macro app_originate res_format_attr_opus
  func_periodic_hook func_channel func_callerid func_strings func_logic func_global func_math
  func_cut func_uri func_timeout func_hangupcause func_db func_env func_shell func_rand
  func_sprintf func_groupcount func_volume func_talkdetect
  codec_ulaw codec_alaw codec_a_mu codec_resample codec_gsm
  format_wav format_sln format_pcm format_gsm format_wav_gsm
  pbx_config res_clioriginate res_convert res_monitor res_limit res_http_media_cache
  res_manager_devicestate res_manager_presencestate res_format_attr_h264 res_sorcery_astdb
  cdr_csv cdr_custom cel_custom res_security_log res_pjsip_phoneprov_provider
  res_prometheus res_agi
)
RECIPE=$(printf '%s\n' "${mods[@]}" | sha1sum | cut -c1-12)

step=""
on_error() {
    echo "install-asterisk: FAILED at step: ${step} (see the output above)" >&2
}
trap on_error ERR
say() { step="$1"; echo "install-asterisk: $1"; }

mkdir -p "$CACHE"

write_env() { # bin moddir datadir version
    cat >"$ENV_FILE.tmp" <<ENV
ASTERISK_BIN=$1
ASTERISK_MODDIR=$2
ASTERISK_DATADIR=$3
ASTERISK_VERSION=$4
ENV
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    echo "install-asterisk: using Asterisk $4 at $1 (modules in $2, data in $3); wrote $ENV_FILE"
}
prefix_ok() { [ -x "$1/sbin/asterisk" ] && [ "$(cat "$1/.complete" 2>/dev/null)" = "$RECIPE" ]; }
use_prefix() { write_env "$1/sbin/asterisk" "$1/lib/asterisk/modules" "$1/var/lib/asterisk" "$2"; }

major_of() { # "Asterisk 22.10.1" -> 22
    sed -n 's/^Asterisk \([0-9]*\)\..*/\1/p' <<<"$1"
}

# --- 1. an Asterisk that is already there ---------------------------------------------------
say "looking for an installed Asterisk >= 20"
for cand in "${ASTERISK_BIN:-}" "$(command -v asterisk 2>/dev/null || true)"; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    ver=$("$cand" -V 2>/dev/null || true)
    major=$(major_of "$ver")
    if [ -n "$major" ] && [ "$major" -ge 20 ]; then
        moddir="${ASTERISK_MODDIR:-}"
        if [ -z "$moddir" ]; then
            for d in /usr/lib/asterisk/modules /usr/lib/x86_64-linux-gnu/asterisk/modules \
                     "$(dirname "$(dirname "$cand")")/lib/asterisk/modules"; do
                [ -d "$d" ] && moddir="$d" && break
            done
        fi
        datadir="${ASTERISK_DATADIR:-}"
        for d in /usr/share/asterisk /var/lib/asterisk \
                 "$(dirname "$(dirname "$cand")")/var/lib/asterisk"; do
            [ -z "$datadir" ] && [ -d "$d/rest-api" ] && datadir="$d"
        done
        if [ -n "$moddir" ] && [ -n "$datadir" ]; then
            write_env "$cand" "$moddir" "$datadir" "${ver#Asterisk }"
            exit 0
        fi
        echo "install-asterisk: $cand ($ver) found, but not its modules or rest-api dir; building our own"
    fi
done

# --- 2. build dependencies and the source package -------------------------------------------
need_pkgs=(build-essential libjansson-dev libxml2-dev libsqlite3-dev libedit-dev uuid-dev libssl-dev
           libsrtp2-dev libcurl4-openssl-dev libncurses-dev bzip2 xz-utils pkg-config dpkg-dev
           patch wget ca-certificates)
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The mirror this machine already uses: never hard-code a host.
mirror_uri() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' \
              | grep -i debian | head -n1 || true)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
              /etc/apt/sources.list || true)
    fi
    [ -n "$uri" ] || { echo "install-asterisk: no Debian mirror found in /etc/apt sources" >&2; return 1; }
    echo "$uri"
}

APTDIR="$CACHE/apt-$SUITE"
aptopts=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=$APTDIR/parts"
         -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
         -o "APT::Sandbox::User=root")

resolve_version() {
    say "reading the $SUITE source index from the machine's Debian mirror"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/parts"
    local uri
    uri=$(mirror_uri)
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $SUITE main" \
        >"$APTDIR/sources.list"
    apt-get "${aptopts[@]}" update -q >/dev/null
    if [ -z "$WANT_VERSION" ]; then
        WANT_VERSION=$(apt-cache "${aptopts[@]}" showsrc asterisk 2>/dev/null \
            | awk '/^Version:/ {print $2}' | grep -E '^(1:)?22\.' | sort -V | tail -n1 || true)
    fi
    [ -n "$WANT_VERSION" ] || { echo "install-asterisk: no asterisk 22.x source in $SUITE" >&2; return 1; }
}

# Upstream version ("1:22.10.1~dfsg+~cs6.15.60671435-1" -> "22.10.1") keys the cache.
upstream_of() { sed -E 's/^[0-9]+://; s/[~+-].*$//' <<<"$1"; }

# A cached prefix wins without touching the network.
cached=$(ls -d "$CACHE"/asterisk-22.* 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "$cached" ] && [ -z "${ASTERISK_DEBIAN_VERSION:-}" ] && prefix_ok "$cached"; then
    use_prefix "$cached" "$(basename "$cached" | sed 's/^asterisk-//')"
    exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing build dependencies: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

resolve_version
UPSTREAM=$(upstream_of "$WANT_VERSION")
PREFIX="$CACHE/asterisk-$UPSTREAM"
if prefix_ok "$PREFIX"; then
    use_prefix "$PREFIX" "$UPSTREAM"
    exit 0
fi

BUILD="$CACHE/build-$UPSTREAM"
say "downloading the asterisk $WANT_VERSION source package"
rm -rf "$BUILD"; mkdir -p "$BUILD"
( cd "$BUILD" && apt-get "${aptopts[@]}" source --download-only -q "asterisk=$WANT_VERSION" )

say "unpacking with Debian's patches (dpkg-source -x)"
( cd "$BUILD" && dpkg-source --no-check -x ./*.dsc src >/dev/null )
SRC="$BUILD/src"

say "preparing the bundled pjproject from the Xpjproject component"
EXT="$CACHE/externals"
mkdir -p "$EXT"
pjver=$(sed -n 's/^PJPROJECT_VERSION *= *//p' "$SRC/third-party/versions.mak" | head -n1)
[ -n "$pjver" ] || { echo "install-asterisk: cannot read PJPROJECT_VERSION" >&2; false; }
[ -d "$SRC/Xpjproject" ] || { echo "install-asterisk: no Xpjproject component in the source" >&2; false; }
tmpd=$(mktemp -d)
cp -a "$SRC/Xpjproject" "$tmpd/pjproject-$pjver"
tar -C "$tmpd" -cjf "$EXT/pjproject-$pjver.tar.bz2" "pjproject-$pjver"
rm -rf "$tmpd"
md5=$(md5sum "$EXT/pjproject-$pjver.tar.bz2" | cut -d' ' -f1)
echo "$md5  pjproject-$pjver.tar.bz2" >"$SRC/third-party/pjproject/pjproject-$pjver.tar.bz2.md5"

say "configure"
cd "$SRC"
./configure -q --prefix="$PREFIX" --with-pjproject-bundled --with-externals-cache="$EXT" \
    --without-sdl --disable-xmldoc >"$BUILD/configure.log" 2>&1 \
    || { tail -n 40 "$BUILD/configure.log"; false; }

say "menuselect: only the modules Standardiste uses"
# (menuselect warns about unset optional codecs, AMR and OPUSENC, which we do not build: quiet.)
make -s menuselect.makeopts >/dev/null 2>&1
MS=menuselect/menuselect
$MS --disable-all menuselect.makeopts >/dev/null 2>&1
# --disable-all also clears OPTIONAL_API, without which res_ari_events cannot load.
$MS --enable OPTIONAL_API menuselect.makeopts >/dev/null 2>&1
for m in "${mods[@]}"; do
    $MS --enable "$m" menuselect.makeopts >/dev/null 2>&1 || true
done
# A portable build: the cached prefix may be reused on another CPU of the same architecture.
$MS --disable BUILD_NATIVE menuselect.makeopts >/dev/null 2>&1 || true

say "compile (make -j$JOBS; 2-3 minutes on 2 cores)"
make -j"$JOBS" >"$BUILD/make.log" 2>&1 || { tail -n 60 "$BUILD/make.log"; false; }

say "install into $PREFIX"
rm -rf "$PREFIX"
make install >"$BUILD/install.log" 2>&1 || { tail -n 40 "$BUILD/install.log"; false; }

say "checking the modules Standardiste needs were built"
for m in chan_pjsip res_pjsip chan_rtp res_ari res_ari_events res_stasis res_stasis_broadcast \
         res_stasis_snoop res_stasis_recording res_stasis_playback bridge_softmix bridge_simple \
         app_dial app_record app_playback app_stasis codec_ulaw codec_alaw format_wav format_sln \
         res_pjsip_messaging res_pjsip_outbound_registration res_geolocation res_statsd \
         res_http_websocket res_pjsip_nat res_rtp_asterisk pbx_config; do
    [ -f "$PREFIX/lib/asterisk/modules/$m.so" ] || { echo "install-asterisk: module $m was not built" >&2; false; }
done
echo "$RECIPE" >"$PREFIX/.complete"
rm -rf "$BUILD"
use_prefix "$PREFIX" "$UPSTREAM"
