using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

public sealed class SnakeCaseTests
{
    [Theory]
    [InlineData("Created", "created")]
    [InlineData("DebitsMustNotExceedCredits", "debits_must_not_exceed_credits")]
    [InlineData("IdMustNotBeIntMax", "id_must_not_be_int_max")]
    [InlineData("ExistsWithDifferentUserData128", "exists_with_different_user_data_128")]
    public void Pascal_case_names_become_snake_case(string pascal, string snake) =>
        Assert.Equal(snake, SnakeCase.FromPascal(pascal));

    [Fact]
    public void Every_transfer_status_has_a_distinct_api_name_and_created_is_created()
    {
        var names = Enum.GetValues<CreateTransferResult>().Select(SnakeCaseNames<CreateTransferResult>.Of).ToArray();

        Assert.Equal(names.Length, names.Distinct().Count());
        Assert.Equal("created", SnakeCaseNames<CreateTransferResult>.Of(CreateTransferResult.Created));
        Assert.Equal("exceeds_credits", SnakeCaseNames<CreateTransferResult>.Of(CreateTransferResult.ExceedsCredits));
        Assert.Equal("needs_cross_shard_path", SnakeCaseNames<CreateTransferResult>.Of(CreateTransferResult.NeedsCrossShardPath));
    }
}
