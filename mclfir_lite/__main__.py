import sys

if sys.argv[1:2] == ["doctor"]:  # before .cli imports torch: the doctor must run, and say so, without it
    from .cli.doctor import cli

    sys.exit(cli(sys.argv[2:]))

from .cli.main import main

sys.exit(main())
