{
  description = "testbed: reproducible observability testbed and chaos/load validation suite";

  # Versions the flake must agree with live in stack/versions.yaml; stack/versions.json is its committed
  # JSON render (`testbed versions render`), read below with builtins.fromJSON.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
    # Python dependencies come from uv.lock (nixpkgs lacks chaostoolkit and pins other versions).
    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
    };
    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      flake-utils,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems,
    }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" ] (
      system:
      let
        pkgs = import nixpkgs { inherit system; };
        inherit (pkgs) lib;

        versions = builtins.fromJSON (builtins.readFile ./stack/versions.json);
        projectVersion = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project.version;

        python = pkgs.python312;
        jdk = pkgs.jdk21_headless;

        # The one Python environment, exactly as uv.lock pins it (dev group included for the checks).
        workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ./.; };
        pythonSet =
          (pkgs.callPackage pyproject-nix.build.packages { inherit python; }).overrideScope
            (
              lib.composeManyExtensions [
                pyproject-build-systems.overlays.default
                (workspace.mkPyprojectOverlay { sourcePreference = "wheel"; })
              ]
            );
        runtimeEnv = pythonSet.mkVirtualEnv "testbed-env-${projectVersion}" workspace.deps.default;
        devEnv = pythonSet.mkVirtualEnv "testbed-dev-env-${projectVersion}" workspace.deps.all;

        # Elasticsearch, Kibana and Logstash are not taken from nixpkgs (unfree 7.17 there, while the
        # client is 9.x): `testbed setup` fetches the pinned Elasticsearch itself; Kibana/Logstash are
        # compose-only.
        # Prometheus, Alertmanager (+ promtool, amtool) and the exporters are not nixpkgs' versions either:
        # `testbed setup` builds them with this Go at stack/versions.yaml's compose versions (go_builds).
        stackTools = with pkgs; [
          jdk
          maven
          go
          grafana
          postgresql_15
          rabbitmq-server
          rsyslog
        ];
        devTools = with pkgs; [
          python
          uv
          gnumake
          git
          jq
          docker-compose
          docker-client
          nix
        ];

        # Refuse to build when the toolchain and versions.yaml disagree.
        pythonMatches = lib.versions.majorMinor python.version == versions.python;
        jdkMatches = lib.toInt (lib.versions.major jdk.version) >= versions.elasticsearch.java_min;
        goMatches = lib.versionAtLeast pkgs.go.version versions.go_builds.go_min;
        checked =
          assert lib.assertMsg pythonMatches
            "python ${python.version} is not stack/versions.yaml's python ${versions.python}";
          assert lib.assertMsg jdkMatches
            "jdk ${jdk.version} is older than stack/versions.yaml's java_min ${toString versions.elasticsearch.java_min}";
          assert lib.assertMsg goMatches
            "go ${pkgs.go.version} is older than stack/versions.yaml's go_builds.go_min ${versions.go_builds.go_min}";
          true;

        # Source for the checks: the repo without local state.
        src = lib.cleanSourceWith {
          src = ./.;
          filter =
            path: type:
            let
              name = baseNameOf path;
            in
            !(builtins.elem name [
              ".venv"
              "results"
              ".env"
              "result"
            ]);
        };

        inRepo = ''
          if [ ! -f pyproject.toml ] || [ ! -f stack/versions.yaml ]; then
            echo "run this from the testbed repository root (where pyproject.toml is)" >&2
            exit 2
          fi
        '';

        pytestCheck =
          name: args:
          assert checked;
          pkgs.runCommand "testbed-${name}"
            {
              # Tools the unit tests call: promtool/amtool (rules, configs), rsyslogd -N1, nix-instantiate.
              # Known gap: the tests use promtool/amtool at the compose versions as `testbed setup` builds
              # them from the Go module proxy, which this sandbox cannot reach; nixpkgs' promtool is not
              # that version. Packaging go_builds with buildGoModule (vendorHash) needs a Nix store.
              nativeBuildInputs = [
                devEnv
                pkgs.nix
                pkgs.prometheus
                pkgs.prometheus-alertmanager
                pkgs.rsyslog
              ];
            }
            ''
              cp -r ${src} source && chmod -R u+w source && cd source
              export HOME=$TMPDIR NIX_STATE_DIR=$TMPDIR/nix TESTBED_STATE_DIR=$TMPDIR/state
              ruff check .
              pytest -p no:cacheprovider ${args}
              touch $out
            '';

        # The project's image (same contents as stack/docker/services.Dockerfile), without Docker:
        # `nix build .#services-image && ./result | docker load`.
        imageRoot = pkgs.runCommand "testbed-image-root" { } ''
          mkdir -p $out/etc $out/app
          echo 'root:x:0:0::/root:/bin/sh' > $out/etc/passwd
          echo 'testbed:x:10001:2000::/app:/bin/sh' >> $out/etc/passwd
          echo 'root:x:0:' > $out/etc/group
          echo 'testbed-pki:x:2000:' >> $out/etc/group
          cp -r ${src}/testbed ${src}/services ${src}/chaos ${src}/stack ${src}/pyproject.toml $out/app/
        '';
      in
      {
        devShells.default = pkgs.mkShell {
          packages = devTools ++ stackTools;
          env = {
            JAVA_HOME = "${jdk}";
            UV_PYTHON = "${python}/bin/python3";
            UV_PYTHON_DOWNLOADS = "never";
          };
          shellHook = ''
            echo "testbed dev shell: uv sync --frozen, then make test / make demo"
          '';
        };

        packages = {
          default = runtimeEnv;
          services-image = pkgs.dockerTools.streamLayeredImage {
            name = "testbed-services";
            tag = projectVersion;
            contents = [
              runtimeEnv
              imageRoot
              pkgs.bashInteractive
              pkgs.coreutils
              pkgs.cacert
            ];
            fakeRootCommands = ''
              mkdir -p testbed/pki testbed/config testbed/logs/services testbed/snapshots tmp
              chmod 1777 tmp
              chown -R 10001:2000 testbed
              chmod 2770 testbed/snapshots
            '';
            enableFakechroot = true;
            config = {
              User = "10001:2000";
              WorkingDir = "/app";
              Cmd = [
                "${runtimeEnv}/bin/testbed"
                "--help"
              ];
              Env = [
                "PATH=${runtimeEnv}/bin:/bin"
                # /app first: the checked-out package with its stack/ declarations next to it.
                "PYTHONPATH=/app"
                "TESTBED_STATE_DIR=/testbed"
                "PYTHONUNBUFFERED=1"
                "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
              ];
            };
          };
        };

        apps =
          let
            app = name: command: {
              type = "app";
              program = lib.getExe (
                pkgs.writeShellApplication {
                  name = "testbed-${name}";
                  runtimeInputs = devTools ++ stackTools;
                  text = inRepo + command;
                }
              );
            };
          in
          {
            demo = app "demo" ''
              export JAVA_HOME=${jdk}
              uv sync --frozen
              exec uv run --frozen testbed demo
            '';
            test = app "test" ''
              export JAVA_HOME=${jdk}
              exec make test
            '';
            default = self.apps.${system}.demo;
          };

        checks = {
          # Unit tests (no running stack needed) and the deployment's static checks.
          unit = pytestCheck "unit" "tests/unit";
          static = pytestCheck "static" "tests/deploy -m 'not compose'";
          # stack/versions.json (read above) must be the render of stack/versions.yaml.
          versions =
            assert checked;
            pkgs.runCommand "testbed-versions" { nativeBuildInputs = [ devEnv ]; } ''
              python - ${./stack/versions.yaml} ${./stack/versions.json} <<'PY'
              import json, sys, yaml
              declared, rendered = yaml.safe_load(open(sys.argv[1])), json.load(open(sys.argv[2]))
              sys.exit(0 if declared == rendered else "stack/versions.json is stale: testbed versions render")
              PY
              touch $out
            '';
        };

        formatter = pkgs.nixfmt-rfc-style;
      }
    );
}
