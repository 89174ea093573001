//! The workloads of `interstice bench` besides the simulation: money moving between the two
//! accounts of a lane. `accounts` is partitioned by lane, so transfers in different lanes never
//! conflict (spread calls over many lanes: conflict-free) and transfers in one lane always do
//! (put every call in lane 0: fully contended). `noop` is the empty reducer.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// Two accounts per lane: ids `2 × lane` and `2 × lane + 1`.
#[table(public, stateful, partition_by = lane)]
#[derive(Clone, Debug, PartialEq)]
pub struct Accounts {
    #[primary_key]
    pub id: u64,
    pub lane: u32,
    pub balance: i64,
}

/// `lanes` lanes of two accounts holding 1 000 000 each; replaces what was there.
#[reducer(writes(accounts))]
fn setup(ctx: ReducerContext, lanes: u32) -> Result<(), String> {
    if lanes == 0 || lanes > 1 << 20 {
        return Err(format!("lanes must be 1 to {} (got {lanes})", 1 << 20));
    }
    let accounts = ctx.current.tables.accounts();
    accounts.clear()?;
    for lane in 0..lanes {
        for side in 0..2 {
            accounts.insert(Accounts {
                id: u64::from(lane) * 2 + side,
                lane,
                balance: 1_000_000,
            })?;
        }
    }
    Ok(())
}

/// Moves `amount` from the lane's first account to its second.
#[reducer(writes(accounts[lane]))]
fn transfer(ctx: ReducerContext, lane: u32, amount: i64) -> Result<(), String> {
    let accounts = ctx.current.tables.accounts();
    let mut pair = accounts.find_by_lane(lane)?;
    if pair.len() != 2 {
        return Err(format!("lane {lane} does not exist; call setup first"));
    }
    pair.sort_by_key(|a| a.id);
    let [from, to] = [pair[0].clone(), pair[1].clone()];
    if from.balance < amount {
        return Err(format!(
            "account {} holds {} < {amount}",
            from.id, from.balance
        ));
    }
    accounts.update(Accounts {
        balance: from.balance - amount,
        ..from
    })?;
    accounts.update(Accounts {
        balance: to.balance + amount,
        ..to
    })?;
    Ok(())
}

/// Does nothing: the cost of an invocation itself. It declares a read of one partition, so
/// it conflicts with nothing but a transfer in that lane.
#[reducer(reads(accounts[lane]))]
fn noop(ctx: ReducerContext, lane: u32) {
    let _ = (ctx, lane);
}

/// The sum of every balance: transfers keep it at 2 000 000 per lane.
#[query(reads(accounts))]
fn total(ctx: QueryContext) -> i64 {
    ctx.current
        .tables
        .accounts()
        .scan()
        .map(|a| a.balance)
        .sum()
}
