"""Admin tools, off the run path: the audit, the image build and its SBOM, the benchmark.

They may use anything the run path offers (they are its clients) and the concrete DockerEngine;
nothing on the run path imports them.
"""
