"""`python -m streaming_runtime`: what `exec_wrapper` runs."""

from streaming_runtime.bootstrap import main

if __name__ == "__main__":
    main()
