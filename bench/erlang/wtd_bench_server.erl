%% An echo gen_server for the gen_server_call workload.
-module(wtd_bench_server).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).

init([]) -> {ok, 0}.
handle_call(N, _From, S) -> {reply, N, S + 1}.
handle_cast(_, S) -> {noreply, S}.
